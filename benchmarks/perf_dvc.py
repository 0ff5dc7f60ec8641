"""DVC overhead: no-op ``dvc repro`` wall time and a ``-S sampler=...`` rerun split by stage.

Builds a throwaway git + DVC copy of the project (the same files the pipeline tests copy) on
the synthetic defaults with small sizes, runs ``dvc repro`` once to fill the cache, then times
a no-op ``dvc repro`` (median of a few) and ``dvc exp run -S sampler=<other>``, stamping each
line DVC prints so the rerun's time can be split by stage and the stages that ran listed.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline.scratch_repo import ROOT, make_repo, run, scratch_env

RUNNING = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change")


def sh(repo: Path, *cmd: str) -> str:
    return run(repo, *cmd).stdout


def small_params(train_size: int, epochs: int) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["synthetic"] = {"train_size": train_size, "dev_size": max(train_size // 4, 10),
                                "test_size": max(train_size // 4, 10)}
    raw["train"]["epochs"] = epochs
    return raw


def timed_stages(repo: Path, *cmd: str) -> tuple[float, dict[str, float], list[str]]:
    """Run ``cmd``; return wall seconds, seconds per stage that ran (from the moment DVC
    announces it to the next announcement or the end) and the stages it skipped."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=repo, env=scratch_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    marks: list[tuple[str, float]] = []
    skipped: list[str] = []
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if m := RUNNING.search(line):
            marks.append((m.group(1), time.perf_counter()))
        elif m := SKIPPED.search(line):
            skipped.append(m.group(1))
    if proc.wait():
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{''.join(tail)}")
    end = time.perf_counter()
    stages = {name: round((marks[i + 1][1] if i + 1 < len(marks) else end) - t, 2)
              for i, (name, t) in enumerate(marks)}
    return end - start, stages, skipped


def measure(work: Path, train_size: int = 100, epochs: int = 1, noop_repeats: int = 3,
            sampler: str = "anneal") -> dict[str, Any]:
    repo = make_repo(work / "dvc-repo", small_params(train_size, epochs), fresh=True)
    first, first_stages, _ = timed_stages(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline run")
    noops = []
    for _ in range(noop_repeats):
        secs, ran, _ = timed_stages(repo, "dvc", "repro")
        if ran:
            raise RuntimeError(f"no-op dvc repro reran {sorted(ran)}")
        noops.append(secs)
    secs, ran, skipped = timed_stages(repo, "dvc", "exp", "run", "-S", f"sampler={sampler}")
    return {"noop_repro_s": round(statistics.median(noops), 2),
            "noop_repro_runs_s": [round(s, 2) for s in noops],
            "first_repro_s": round(first, 1), "first_repro_stages_s": first_stages,
            "sampler_rerun_s": round(secs, 1), "sampler_rerun_stages_s": ran,
            "sampler_rerun_skipped": skipped, "sampler": sampler,
            "synthetic_train_size": train_size, "epochs": epochs}
