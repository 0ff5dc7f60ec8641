"""The environment defaults of every process the project runs, in one place.

Offline and quiet unless the user says otherwise: no analytics from DVC, Prefect or Hugging
Face, and single-threaded tokenizers (a process that forks after the Rust tokenizer pool has
started can deadlock). Defaults only: a value the caller already set wins. ``scripts/env.sh``
exports the same values for an interactive shell (a test keeps the two equal).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

QUIET_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_defaults() -> None:
    """Set the defaults in this process (the stage and CLI entry points call it first)."""
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)


def subprocess_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a DVC (or git) subprocess: ``base`` (default: ours) with the
    defaults, and this interpreter's folder first on PATH.

    DVC runs each stage's ``python -m stages...`` through the shell's PATH, so a venv used
    without activating it still runs its stages in that venv.
    """
    env = {**QUIET_DEFAULTS, **(os.environ if base is None else base)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
