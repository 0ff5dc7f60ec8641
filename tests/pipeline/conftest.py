"""A throwaway git + DVC copy of the project, with tiny params, for end-to-end runs: the
helpers of ``pipeline.scratch_repo`` (shared with the DVC benchmark) under the tests' names,
plus digests of a run's outputs for byte-for-byte comparisons and the stages a DVC command
reran."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pipeline.scratch_repo import commit_all, make_repo, run
from pipeline.scratch_repo import scratch_env as env

__all__ = ["changed_stages", "commit_all", "env", "make_repo", "output_digests", "run"]


def output_digests(repo: Path, outputs: list[str]) -> dict[str, str]:
    """sha256 of every file under each of ``outputs`` (files or folders), by repo path."""
    out = {}
    for rel in outputs:
        root = repo / rel
        for p in sorted([root] if root.is_file() else root.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(repo))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def changed_stages(output: str) -> set[str]:
    """The stages a ``dvc repro`` / ``dvc exp run`` did not take as unchanged: those it ran,
    and those its run cache served (a copy of the built project shares one DVC cache with
    the session's other copies, so another test may have run the same stage first)."""
    found = re.findall(r"Running stage '(\w+)'|Stage '(\w+)' is cached - skipping run", output)
    return {ran or cached for ran, cached in found}
