"""The DVC experiments of a project and their dev predictions, read back from DVC (no stage runs).

``dvc exp show --json`` lists every experiment with its commit, params and metrics; each
experiment's dev prediction files (``results/eval/predictions/{task}-dev.parquet``, written by
the evaluate stage) and dev labels (``data/prepared/{task}/dev.parquet``) are DVC outputs of
that commit, so :func:`read_dev` opens them through ``dvc.api.DVCFileSystem`` at the commit,
from the local cache. The ablation table can then resample dev rows of runs that finished
long ago without training or evaluating anything again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline.config import Params, parse_params, without_catalogue
from pipeline.errors import UserError
from pipeline.intervals import TaskDev
from pipeline.leaderboard import METRICS_FILE, PARAMS_FILE, flatten_metrics, time_metrics

PREDICTIONS = "results/eval/predictions/{task}-dev.parquet"
LABELS = "data/prepared/{task}/dev.parquet"


@dataclass
class ExpRun:
    """One finished experiment: its name, commit, params (params.yaml) and flat metrics."""

    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", 0) or 0)

    def trained_with(self) -> Params:
        """The params the run trained with. Its ``ablations`` and ``budgets`` sections are
        left out: they are the catalogue of its commit, read by no stage, and a run made
        before a rule about them was added (say, that a frozen ablation sets
        ``train.head_lr``) must stay readable."""
        return parse_params(without_catalogue(self.params), f"params of experiment {self.name}")


def experiments(shown: list[dict[str, Any]]) -> list[ExpRun]:
    """Every experiment with params and metrics in ``dvc exp show --json`` output (a run that
    failed has no metrics and is left out)."""
    out = []
    for base in shown:
        if not isinstance(base, dict) or base.get("rev") == "workspace":
            continue
        for exp in base.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs or not revs[0].get("rev"):
                continue
            data = revs[0].get("data") or {}
            params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data")
            metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data")
            if not isinstance(params, dict) or not isinstance(metrics, dict):
                continue
            name = exp.get("name") or revs[0].get("name") or str(revs[0]["rev"])
            flat = {**flatten_metrics(metrics), **time_metrics(data)}
            out.append(ExpRun(name, str(revs[0]["rev"]), params, flat))
    return out


def _read_table(fs: Any, path: str, columns: list[str]) -> Any:
    with fs.open(path, "rb") as fh:
        return pq.read_table(fh, columns=columns)


def read_dev(project: Path, run: ExpRun) -> dict[str, TaskDev]:
    """Each task's dev rows of ``run`` as stored in DVC at its commit: ids, gold labels (from
    its prepared data) and predictions. Tasks without dev predictions are left out."""
    from dvc.api import DVCFileSystem

    params = run.trained_with()
    fs = DVCFileSystem(str(project), rev=run.rev)
    out: dict[str, TaskDev] = {}
    try:
        for task, cfg in params.tasks.items():
            pred_path = PREDICTIONS.format(task=task)
            if not fs.exists(pred_path):
                continue
            preds = _read_table(fs, pred_path, ["id", "prediction"])
            labels = _read_table(fs, LABELS.format(task=task), ["id", "label"])
            gold = dict(zip(labels.column("id").to_pylist(),
                            labels.column("label").to_pylist(), strict=True))
            ids = preds.column("id").to_pylist()
            missing = [i for i in ids if i not in gold]
            if missing:
                raise UserError(f"experiment {run.name}: {task} dev predictions for ids with "
                                f"no label, e.g. {missing[0]}")
            out[task] = TaskDev(
                np.array(ids, dtype=object), np.array([gold[i] for i in ids], np.float64),
                preds.column("prediction").to_numpy(zero_copy_only=False).astype(np.float64),
                "pearson" if cfg.type == "regression" else "accuracy")
    finally:
        close = getattr(fs, "close", None)
        if callable(close):
            close()
    return out
