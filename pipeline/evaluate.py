"""Metrics per task and the overall score, from scikit-learn and scipy.

Primary metric: accuracy (classification) or Pearson r (regression).
``overall`` is the CS224N leaderboard score generalised to any task set: the mean over the
tasks with ``in_overall: true`` of accuracy, or (r + 1) / 2 for regression, so every term is
in 0..1; with sst, para and sts that is (sst_acc + para_acc + (sts_r + 1) / 2) / 3.
``overall_mean`` is the plain mean of the same primary metrics (r not rescaled).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from pipeline.config import TaskConfig, overall_tasks
from pipeline.errors import UserError
from pipeline.model.multitask import TaskSpec


def _correlation(fn, gold: np.ndarray, pred: np.ndarray, name: str) -> float:  # type: ignore[no-untyped-def]
    if len(gold) < 2 or np.ptp(pred) == 0 or np.ptp(gold) == 0:
        warnings.warn(f"{name} undefined for constant values; reported as 0.0", stacklevel=3)
        return 0.0
    return float(fn(gold, pred)[0])


def task_metrics(spec: TaskSpec, gold: np.ndarray, pred: np.ndarray,
                 scores: np.ndarray | None = None) -> dict[str, float]:
    """Dev metrics of one task. ``scores``: class probabilities (N, C) for classification."""
    if spec.type == "regression":
        return {
            "pearson": _correlation(stats.pearsonr, gold, pred, "pearson"),
            "spearman": _correlation(stats.spearmanr, gold, pred, "spearman"),
            "mse": float(skm.mean_squared_error(gold, pred)),
        }
    gold_i, pred_i = gold.astype(int), pred.astype(int)
    labels = list(range(spec.output_size))
    out = {
        "accuracy": float(skm.accuracy_score(gold_i, pred_i)),
        "macro_f1": float(skm.f1_score(gold_i, pred_i, labels=labels, average="macro",
                                       zero_division=0)),
    }
    if spec.output_size == 2:
        out["f1"] = float(skm.f1_score(gold_i, pred_i, zero_division=0))
        out["precision"] = float(skm.precision_score(gold_i, pred_i, zero_division=0))
        out["recall"] = float(skm.recall_score(gold_i, pred_i, zero_division=0))
        if scores is not None and len(np.unique(gold_i)) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(gold_i, scores[:, 1]))
    return out


def primary(spec: TaskSpec, m: dict[str, float]) -> float:
    return m["pearson"] if spec.type == "regression" else m["accuracy"]


def overall_scores(specs: dict[str, TaskSpec], per_task: dict[str, dict[str, float]],
                   in_overall: set[str]) -> dict[str, float]:
    """``overall`` (all terms in 0..1) and ``overall_mean`` over the tasks in ``in_overall``;
    if none of the evaluated tasks is in it, over every evaluated task."""
    names = [t for t in per_task if t in in_overall] or list(per_task)
    if not names:
        return {"overall": 0.0, "overall_mean": 0.0}
    prim = {t: primary(specs[t], per_task[t]) for t in names}
    scaled = [(v + 1) / 2 if specs[t].type == "regression" else v for t, v in prim.items()]
    return {"overall": float(np.mean(scaled)), "overall_mean": float(np.mean(list(prim.values())))}


def evaluate_run(model_dir: Path, tokenized: Path, tasks: dict[str, TaskConfig],
                 batch_size: int, metrics_path: Path, predictions_dir: Path,
                 plots_dir: Path | None = None, predict_test: bool = True) -> dict[str, Any]:
    """Score every dev split and predict dev and test (dev only when ``predict_test`` is
    false); write metrics and prediction tables.

    Predictions are written as ``{task}-{split}.parquet`` (id, prediction, class
    probabilities) so that ``export`` formats them without running the model again.
    With ``plots_dir``, the dev plot data for ``dvc plots`` goes there (``pipeline.plots``).
    """
    import pyarrow as pa

    from pipeline.data.batching import load_task_data
    from pipeline.device import select_device
    from pipeline.inference import predict
    from pipeline.io import atomic_path, read_json, write_json, write_parquet
    from pipeline.model.multitask import MultitaskModel
    from pipeline.plots import DevResult, write_plots
    from pipeline.predict import model_precision

    device = select_device()
    model = MultitaskModel.load(model_dir, device)
    precision = model_precision(model_dir, device)  # as training scored dev
    pad_id = int(read_json(tokenized / "meta.json")["pad_token_id"])
    per_task: dict[str, dict[str, float]] = {}
    dev_results: dict[str, DevResult] = {}
    with atomic_path(predictions_dir) as staged:
        staged.mkdir(parents=True)
        for task in tasks:
            if task not in model.tasks:
                raise UserError(f"task '{task}' is not in the trained model (tasks: "
                                f"{', '.join(model.tasks)}); retrain after changing tasks")
            for split in ("dev", "test") if predict_test else ("dev",):
                path = tokenized / task / f"{split}.parquet"
                if not path.is_file():
                    continue
                data = load_task_data(path, task, model.tasks[task].encoding)
                p = predict(model, data, batch_size, pad_id, device, precision)
                cols: dict[str, Any] = {"id": pa.array(p.ids, pa.string()),
                                        "prediction": pa.array(p.pred)}
                if p.scores is not None:
                    cols["probabilities"] = pa.array(p.scores.tolist(), pa.list_(pa.float64()))
                write_parquet(staged / f"{task}-{split}.parquet", pa.table(cols))
                if split == "dev" and len(data) and data.has_labels:
                    per_task[task] = task_metrics(model.tasks[task], data.labels, p.pred,
                                                  p.scores)
                    dev_results[task] = DevResult(data.labels, p.pred, p.scores)
    in_overall = overall_tasks(tasks)
    result = {**per_task, **overall_scores(model.tasks, per_task, in_overall)}
    write_json(metrics_path, result)
    if plots_dir is not None:
        write_plots(plots_dir, model.tasks, dev_results)
    return result
