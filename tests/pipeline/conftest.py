"""A throwaway git + DVC copy of the project, with tiny params, for end-to-end runs: the
helpers of ``pipeline.scratch_repo`` (shared with the DVC benchmark) under the tests' names."""

from __future__ import annotations

from pipeline.scratch_repo import commit_all, make_repo, run
from pipeline.scratch_repo import scratch_env as env

__all__ = ["commit_all", "env", "make_repo", "run"]
