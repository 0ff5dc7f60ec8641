"""Shared wiring for the DVC stage modules: clean user errors, quiet offline defaults."""

from __future__ import annotations

import sys
from collections.abc import Callable

from pipeline.env import apply_defaults
from pipeline.errors import UserError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a ``UserError`` prints one line and exits 2, no traceback."""
    apply_defaults()
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
