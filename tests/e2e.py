"""One end-to-end params preset, one built project, cheap copies of it.

Every test that runs the DVC pipeline end to end starts from the same tiny project: the
:data:`E2E_OVERRIDES` preset, built once per test session by one ``dvc repro`` (under
``pytest-xdist`` the first worker to need it builds it under a file lock; the others wait
and reuse it). A test copies the built project (:func:`copy_built`) instead of running
``dvc repro`` from scratch, so the six stages of the baseline run once per session, not once
per test module.

A copy either shares one DVC cache with every other shared copy (the run cache then serves a
stage another test already ran with the same deps and params), or gets a private copy of the
baseline's cache (for tests that count cache objects or need a stage to really run).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pipeline.config import deep_merge
from pipeline.scratch_repo import commit_all, make_repo, run
from tests.conftest import tiny_params_dict

# The smallest data and training that every end-to-end assertion holds on (both labels in
# every dev split, a loss that moves, eight prediction files). One thread: under
# `pytest -n 2` the other core runs the other worker.
E2E_OVERRIDES: dict[str, Any] = {
    "train": {"epochs": 1, "threads": 1},
    "data": {"synthetic": {"train_size": 100, "dev_size": 40, "test_size": 20}},
}


def e2e_params_dict(**extra: Any) -> dict[str, Any]:
    """The end-to-end preset, with ``extra`` merged over it (a test's own changes)."""
    return tiny_params_dict(**deep_merge(E2E_OVERRIDES, extra))


@dataclass(frozen=True)
class BuiltRepo:
    """The project after its first ``dvc repro`` (committed as "baseline"); never modified.

    ``repro_output`` is that run's stdout (every stage ran: the cache was empty), and
    ``shared_cache`` the DVC cache that shared copies use (seeded with the baseline's)."""

    path: Path
    repro_output: str
    shared_cache: Path


def build(root: Path) -> BuiltRepo:
    """Build the project under ``root`` once; later calls (any process) reuse it."""
    root.mkdir(parents=True, exist_ok=True)
    record = root / "built.json"
    with FileLock(str(root / "build.lock")):
        if not record.exists():
            # fresh: a build that failed in another worker may have left a partial project
            repo = make_repo(root / "project", e2e_params_dict(), fresh=True)
            output = run(repo, "dvc", "repro").stdout
            commit_all(repo, "baseline")
            shutil.rmtree(root / "dvc-cache", ignore_errors=True)
            shutil.copytree(repo / ".dvc" / "cache", root / "dvc-cache")
            record.write_text(json.dumps({"path": str(repo), "repro_output": output,
                                          "shared_cache": str(root / "dvc-cache")}))
    saved = json.loads(record.read_text())
    return BuiltRepo(Path(saved["path"]), saved["repro_output"], Path(saved["shared_cache"]))


def copy_built(built: BuiltRepo, dest: Path, shared_cache: bool = True) -> Path:
    """A working copy of the built project at ``dest`` (git history, outputs, dvc.lock).

    ``shared_cache``: use the session's shared DVC cache (``.dvc/config.local``); otherwise
    the copy keeps a private copy of the baseline's cache in ``.dvc/cache``. DVC's state
    (``.dvc/tmp``) is not copied: the copy's files are new inodes, hashed afresh."""
    skip = {"tmp", "cache"} if shared_cache else {"tmp"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return skip & set(names) if Path(folder) == built.path / ".dvc" else set()

    shutil.copytree(built.path, dest, symlinks=True, ignore=ignore)
    if shared_cache:
        (dest / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {built.shared_cache}\n")
    return dest
