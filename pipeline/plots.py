"""Dev-split plot data for ``dvc plots``: confusion matrices, predicted-vs-gold, ROC curves.

The evaluate stage writes plain CSV files and ``dvc.yaml`` says how to draw them (template,
axes), so the plots are diffable across experiments (``dvc plots diff``) and need no plotting
library here. One folder per plot kind, one file per task, so a task added in ``params.yaml``
gets its plots with no change to ``dvc.yaml``:

- ``confusion/{task}.csv``: one row per dev example (``actual``, ``predicted``), every
  classification task (DVC's ``confusion`` template counts the pairs itself);
- ``roc/{task}.csv``: ``fpr``, ``tpr`` of the positive class, binary classification tasks whose
  dev split has both classes;
- ``scatter/{task}.csv``: ``actual``, ``predicted`` per dev example, regression tasks.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from pipeline.io import atomic_path
from pipeline.model.multitask import TaskSpec

KINDS = ("confusion", "roc", "scatter")


@dataclass
class DevResult:
    """Gold labels and predictions of one task's dev split, in file order."""

    gold: np.ndarray
    pred: np.ndarray
    scores: np.ndarray | None  # class probabilities (N, C) for classification


def _write_csv(path: Path, header: list[str], rows: list[tuple[object, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def roc_points(gold: np.ndarray, positive_scores: np.ndarray) -> list[tuple[float, float]]:
    """(fpr, tpr) points of the ROC curve, from sklearn; empty if a class is missing."""
    gold_i = gold.astype(int)
    if len(np.unique(gold_i)) < 2:
        return []
    fpr, tpr, _ = skm.roc_curve(gold_i, positive_scores)
    return [(round(float(f), 6), round(float(t), 6)) for f, t in zip(fpr, tpr, strict=True)]


def write_plots(out_dir: Path, specs: dict[str, TaskSpec], dev: dict[str, DevResult]) -> list[Path]:
    """Write every plot file for the evaluated dev splits into ``out_dir`` (replaced whole);
    return the files written. All three kind folders always exist, so DVC finds its outputs."""
    written: list[Path] = []
    with atomic_path(out_dir) as staged:
        for kind in KINDS:
            (staged / kind).mkdir(parents=True)
        for task, r in dev.items():
            spec = specs[task]
            if spec.type == "regression":
                rows = [(round(float(g), 4), round(float(p), 4))
                        for g, p in zip(r.gold, r.pred, strict=True)]
                _write_csv(staged / "scatter" / f"{task}.csv", ["actual", "predicted"], rows)
                written.append(out_dir / "scatter" / f"{task}.csv")
                continue
            rows = [(int(g), int(p)) for g, p in zip(r.gold, r.pred, strict=True)]
            _write_csv(staged / "confusion" / f"{task}.csv", ["actual", "predicted"], rows)
            written.append(out_dir / "confusion" / f"{task}.csv")
            if spec.output_size == 2 and r.scores is not None:
                points = roc_points(r.gold, r.scores[:, 1])
                if points:
                    _write_csv(staged / "roc" / f"{task}.csv", ["fpr", "tpr"], points)
                    written.append(out_dir / "roc" / f"{task}.csv")
    return written
