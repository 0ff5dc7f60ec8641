"""``benchmarks/best.json``: what the leaderboard preset reached, read from the finished run.

The preset (a budget of params.yaml, ``cpu-long`` by default) runs as a DVC experiment that is
then applied to the workspace (``scripts/run-leaderboard.sh``); this module reads the files that
run left there, so the record describes exactly that run and nothing is typed in by hand:

- dev scores per task and overall (``results/eval/metrics.json``, the evaluate stage's),
- training time: the steps alone and the whole ``fit`` with its per-epoch dev scoring
  (``results/train/live/metrics.json``), and the dev curve per epoch against the steps'
  cumulative seconds (``models/multitask/train_summary.json``), and what the saved model is
  made of (the best epoch, the averaged epochs, the WiSE-FT alpha: the same file),
- the test prediction files with their id counts and SHA-256,
- the commit, the exact command and the machine (CPU model, cores, torch, precision).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.io import read_json, write_json
from pipeline.machine import machine_facts
from pipeline.run_summary import count_ids, primary_metrics

METRICS = Path("results/eval/metrics.json")
TRAIN_LIVE = Path("results/train/live/metrics.json")
TRAIN_SUMMARY = Path("models/multitask/train_summary.json")
PREDICTIONS = Path("predictions")


def primary_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """Each task's primary dev metric (accuracy or Pearson r), plus ``overall``."""
    out = {task: round(value, 4) for task, (_, value) in primary_metrics(metrics).items()}
    if "overall" in metrics:
        out["overall"] = round(float(metrics["overall"]), 4)
    return out


def dev_curve(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per scored epoch: optimizer steps, the steps' cumulative seconds and the
    primary dev scores (an epoch-0 point is the untrained model, at 0 s)."""
    return [{"epoch": h["epoch"], "step": h.get("step", 0),
             "train_seconds": h.get("train_seconds", 0.0),
             "dev": primary_scores(h["dev"])} for h in summary.get("history", [])]


def git_commit(project: Path) -> dict[str, Any]:
    """HEAD and whether tracked files other than params.yaml differ from it (params.yaml
    carries the applied preset's values by design)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, text=True,
                          capture_output=True)
    if head.returncode != 0:
        raise UserError(f"{project} is not a git checkout: {head.stderr.strip()}")
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            cwd=project, text=True, capture_output=True).stdout.splitlines()
    changed = sorted(line[3:] for line in status
                     if line[3:] not in {"params.yaml", "dvc.lock", "benchmarks/best.json"})
    return {"commit": head.stdout.strip(), "changed_files": changed}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files(project: Path) -> list[dict[str, Any]]:
    folder = project / PREDICTIONS
    return [{"path": str(p.relative_to(project)), "ids": count_ids(p), "sha256": file_sha256(p)}
            for p in sorted(folder.glob("*-test-output.csv"))]


def build_record(project: Path, budget: str, experiment: str, command: str,
                 overrides: dict[str, str], description: str,
                 wall_seconds: float | None) -> dict[str, Any]:
    """The record of the finished run in ``project``'s workspace (see the module doc)."""
    for rel in (METRICS, TRAIN_LIVE, TRAIN_SUMMARY):
        if not (project / rel).is_file():
            raise UserError(f"no {rel} in {project}: run and apply the preset first "
                            "(scripts/run-leaderboard.sh)")
    metrics = read_json(project / METRICS)
    live = read_json(project / TRAIN_LIVE)
    summary = read_json(project / TRAIN_SUMMARY)
    tests = test_files(project)
    if not tests:
        raise UserError(f"no test prediction files in {project / PREDICTIONS}: the preset "
                        "must predict test (evaluate.predict_test: true)")
    return {
        "budget": budget, "description": description, "experiment": experiment,
        "command": command, "overrides": overrides,
        **git_commit(project),
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": {**machine_facts(), "precision": summary.get("precision")},
        "dev": primary_scores(metrics),
        "dev_metrics": {t: m for t, m in metrics.items() if isinstance(m, dict)},
        "train_step_seconds": curve_seconds(summary),
        "train_fit_seconds": live.get("train_seconds"),
        "steps": summary.get("steps"), "best_epoch": summary.get("best_epoch"),
        "saved_model": saved_model(summary),
        "curve": dev_curve(summary),
        "wall_seconds": None if wall_seconds is None else round(wall_seconds),
        "test_predictions": tests,
    }


def saved_model(summary: dict[str, Any]) -> dict[str, Any]:
    """What the saved (and scored) model is made of: the epochs whose weights were averaged
    (``train.average_last_epochs``; None: the best epoch's weights) and at how many points
    (``train.average_points_per_epoch``; older summaries: one per epoch), and the WiSE-FT
    alpha it was then mixed with (None: not mixed)."""
    average = summary.get("average") or {}
    wise_ft = summary.get("wise_ft") or {}
    epochs = average.get("epochs")
    points = average.get("points", None if epochs is None else len(epochs))
    return {"averaged_epochs": epochs, "averaged_points": points,
            "wise_ft_alpha": wise_ft.get("alpha")}


def curve_seconds(summary: dict[str, Any]) -> float | None:
    """The steps' seconds of the whole run: the last epoch's cumulative count."""
    history = summary.get("history", [])
    return history[-1].get("train_seconds") if history else None


def record_best(project: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    record = build_record(project, **kwargs)
    write_json(out, record)
    return record
