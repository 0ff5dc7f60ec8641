"""``python -m pipeline <command>``: see ``pipeline.cli``."""

from pipeline.cli import main

raise SystemExit(main())
