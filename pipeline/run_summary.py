"""What the main command prints at the end: the dev table and where the test predictions are.

Read from the files the pipeline wrote (``results/eval/metrics.json``, ``predictions/``), so
it describes exactly the finished run, and counts the ids in each test prediction file so a
user sees at a glance that every test id got a prediction.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.errors import UserError
from pipeline.io import read_json

PRIMARY = ("accuracy", "pearson")  # classification, regression


def primary_metrics(metrics: dict[str, object]) -> dict[str, tuple[str, float]]:
    """Each task's primary dev metric (accuracy or Pearson r): task -> (name, value)."""
    out: dict[str, tuple[str, float]] = {}
    for task, m in metrics.items():
        if isinstance(m, dict):
            name = next((k for k in PRIMARY if k in m), None)
            if name is not None:
                out[task] = (name, float(m[name]))
    return out


def dev_table(metrics: dict[str, object]) -> list[str]:
    """One line per task (its primary dev metric), then ``overall``."""
    lines = [f"{'task':<10}{'metric':<10}{'dev':>8}"]
    lines += [f"{task:<10}{name:<10}{value:>8.4f}"
              for task, (name, value) in primary_metrics(metrics).items()]
    if "overall" in metrics:
        lines.append(f"{'overall':<20}{float(metrics['overall']):>8.4f}  "  # type: ignore[arg-type]
                     "(mean of sst acc, para acc, (sts r + 1) / 2)")
    return lines


def count_ids(path: Path) -> int:
    """Prediction rows of a CS224N output file (the header line not counted)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


def summary(metrics_path: Path, predictions: Path) -> str:
    if not metrics_path.is_file():
        raise UserError(f"no dev metrics at {metrics_path}: run `dvc repro` first")
    lines = [f"== dev scores ({metrics_path}) ==", *dev_table(read_json(metrics_path))]
    tests = sorted(predictions.glob("*-test-output.csv")) if predictions.is_dir() else []
    lines += ["", f"== test prediction files ({predictions}/, CS224N format) =="]
    lines += [f"{p}  ({count_ids(p)} ids)" for p in tests] or [
        "none (evaluate.predict_test is false)"]
    return "\n".join(lines)
