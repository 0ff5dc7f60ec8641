"""A throwaway git + DVC copy of this checkout's pipeline, for end-to-end tests and benchmarks.

The copy holds the pipeline code, the stages, ``dvc.yaml`` and the shipped ``data/cs224n`` of
the checkout this package is imported from, plus a ``params.yaml`` of the caller's, committed
once (``dvc exp run`` needs a commit). Commands run in it through :func:`run` with
:func:`scratch_env` (:func:`pipeline.env.subprocess_env`: DVC finds this interpreter first on
PATH, analytics are off) where git has an identity, and ``PYTHONPATH`` is dropped so the
copy's own code is what its stages import. Bytecode goes to one folder outside every copy
(``PYTHONPYCACHEPREFIX``): each stage process of a copy would otherwise compile the package
afresh (about 0.9 s of CPU per stage), and ``__pycache__`` folders inside a copy would show
up among the files a test expects a command to leave alone.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipeline.dvc_run import dvc_command
from pipeline.env import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
# data/cs224n: the shipped task files are a dependency of the prepare stage (dvc.yaml), so
# DVC needs them, and ``data.dir=data/cs224n`` works in the copy as in the checkout.
PROJECT_FILES = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config",
                 ".dvc/.gitignore", ".dvc/plots-template.html", ".dvc/plots", "data/cs224n"]

# Shared by every copy (a path's bytecode lives under its own absolute path there).
PYCACHE_PREFIX = Path(tempfile.gettempdir()) / "multitask-bert-pipeline-pycache"


class ScratchCommandError(RuntimeError):
    """A command in the scratch repo exited non-zero (the message holds its output's tail)."""


def scratch_env() -> dict[str, str]:
    e = subprocess_env()
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e.update(PYTHONPYCACHEPREFIX=str(PYCACHE_PREFIX),
             GIT_AUTHOR_NAME="scratch", GIT_AUTHOR_EMAIL="scratch@localhost",
             GIT_COMMITTER_NAME="scratch", GIT_COMMITTER_EMAIL="scratch@localhost")
    e.pop("PYTHONPATH", None)
    return e


def run(repo: Path, *cmd: str, check: bool = True,
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run a command in the scratch repo as a user would type it, output captured; ``dvc``
    is this interpreter's (:func:`pipeline.dvc_run.dvc_command`, as the pipeline runs it)."""
    argv = dvc_command(*cmd[1:]) if cmd[:1] == ("dvc",) else list(cmd)
    proc = subprocess.run(argv, cwd=repo, env=scratch_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise ScratchCommandError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def make_repo(dest: Path, params: dict[str, Any], fresh: bool = False) -> Path:
    """Copy the pipeline to ``dest`` with ``params`` as its params.yaml and commit it
    (``fresh``: remove whatever ``dest`` held first)."""
    if fresh and dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in PROJECT_FILES:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(dest, "git", "init", "-q")
    commit_all(dest, "init")
    return dest


def commit_all(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)
