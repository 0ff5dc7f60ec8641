"""The environment a DVC subprocess runs in, shared by the CLI and the Prefect flows.

DVC runs each stage's `python -m stages...` through the shell's PATH, so the directory of the
interpreter running us goes first: a venv used without activating it still runs its stages in
that venv. Analytics stay off and tokenizers single-threaded unless the caller set them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
