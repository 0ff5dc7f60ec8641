"""A throwaway git + DVC copy of the project, with tiny params, for end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

PROJECT_FILES = ["pipeline", "stages", "dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config",
                 ".dvc/.gitignore", ".dvc/plots-template.html"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(DVC_NO_ANALYTICS="1", DO_NOT_TRACK="1", PYTHONDONTWRITEBYTECODE="1",
             GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@localhost",
             GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@localhost",
             TOKENIZERS_PARALLELISM="false")
    return e


def run(repo: Path, *cmd: str, check: bool = True,
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), cwd=repo, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def make_repo(dest: Path, params: dict[str, Any]) -> Path:
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
    run(dest, "git", "add", "-A")
    run(dest, "git", "commit", "-qm", "init")
    return dest


def commit_all(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)
