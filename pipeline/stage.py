"""Shared wiring for the DVC stage modules: clean user errors, quiet offline defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from pipeline.errors import UserError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a ``UserError`` prints one line and exits 2, no traceback."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
