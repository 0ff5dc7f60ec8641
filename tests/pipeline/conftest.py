"""A throwaway git + DVC copy of the project, with tiny params, for end-to-end runs: the
helpers of ``pipeline.scratch_repo`` (shared with the DVC benchmark) under the tests' names,
plus digests of a run's outputs for byte-for-byte comparisons."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.scratch_repo import commit_all, make_repo, run
from pipeline.scratch_repo import scratch_env as env

__all__ = ["commit_all", "env", "make_repo", "output_digests", "run"]


def output_digests(repo: Path, outputs: list[str]) -> dict[str, str]:
    """sha256 of every file under each of ``outputs`` (files or folders), by repo path."""
    out = {}
    for rel in outputs:
        root = repo / rel
        for p in sorted([root] if root.is_file() else root.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(repo))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
