"""Re-fit a classification task's linear head on the trained encoder's features, score dev.

Why it exists: the preset saves the mean of the last epochs' weights mixed with the step-0
model (WiSE-FT). The head's weights are averaged and mixed like the encoder's, so the saved
head is not the classifier that best reads the saved encoder's pooled vectors. This script
re-fits it as a linear probe of the final model (the zero-shot probe's fit,
``head_init.fit_linear_probe``, on every train row instead of a sample, with its inverse L2
strength chosen by cross-validation on train instead of fixed) and scores dev once with the
train stage's scorer. Only that task's head changes, so every other task must score exactly
what the saved model scores: the script checks it. The trial and its rule:
``benchmarks/head-refit.md``. Run inside a workspace that holds the trained model (after
``dvc exp apply``) with its ``params.yaml``::

    python -m benchmarks.head_refit --task sst --out results/head_refit.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.config import load_params
from pipeline.model.head_init import (
    PROBE_TOL,
    HeadFeatures,
    collect_features,
    fit_linear_probe,
    standardiser,
)
from pipeline.model.heads import LinearHead
from pipeline.precision import resolve_precision
from pipeline.train.run import load_split
from pipeline.wise_ft_sweep import open_saved_model, row_line

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 5


def head_accuracy(head: LinearHead, f: HeadFeatures) -> float:
    """Accuracy of ``head`` as it stands on features ``f`` (dropout off)."""
    x = torch.from_numpy(f.a if f.b is None else np.concatenate([f.a, f.b], axis=1))
    with torch.no_grad():
        logits = head.proj((x.to(head.input_mean) - head.input_mean) / head.input_scale)
    return float((logits.argmax(-1).numpy() == f.labels).mean())


def choose_c(f: HeadFeatures, grid: tuple[float, ...] = C_GRID, folds: int = FOLDS,
             seed: int = 0) -> tuple[float, dict[float, float]]:
    """The C of ``grid`` with the best mean accuracy over stratified ``folds``-fold
    cross-validation on ``f`` (the smaller C on a tie), and each C's mean accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = (f.a if f.b is None else np.concatenate([f.a, f.b], axis=1)).astype(np.float64)
    mean, scale = standardiser(x)
    xs = (x - mean) / scale
    labels = f.labels.astype(np.int64)
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = {c: float(cross_val_score(LogisticRegression(C=c, tol=PROBE_TOL, max_iter=5000),
                                       xs, labels, cv=split).mean()) for c in grid}
    best = max(scores.values())
    return min(c for c, s in scores.items() if s == best), scores


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst", help="a classification task with a linear head")
    ap.add_argument("--model-dir", type=Path, default=Path("models/multitask"))
    ap.add_argument("--tokenized", type=Path, default=Path("data/tokenized"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    device = torch.device("cpu")
    run = open_saved_model(load_params(Path("params.yaml")), args.model_dir, args.tokenized,
                           device)
    model = run.model
    head = model.heads[args.task]
    if not isinstance(head, LinearHead) or model.tasks[args.task].type != "classification":
        raise SystemExit(f"{args.task}: not a classification task with a linear head")
    precision = resolve_precision(run.params.train.precision, device)

    began = time.time()
    train = load_split(args.tokenized, {args.task: model.tasks[args.task]}, "train")[args.task]
    feats = collect_features(model, args.task, train, np.arange(len(train)),
                             int(run.meta["pad_token_id"]), device, precision)
    saved_train_acc = head_accuracy(head, feats)
    c, cv = choose_c(feats, seed=run.params.seed)
    note = fit_linear_probe(head, feats, c)
    refit = {k: v.detach().clone() for k, v in model.state_dict().items()}
    print(f"features of {len(train)} train rows, C by {FOLDS}-fold CV: {c} "
          f"({time.time() - began:.0f} s); saved head's train acc {saved_train_acc:.4f}; "
          f"refit: {note}", flush=True)

    rows: list[dict[str, Any]] = []
    for arm, weights in (("saved", run.weights), ("refit", refit)):
        rows.append({"arm": arm, **run.row(weights)})
        print(row_line(arm, rows[-1]), flush=True)
    others_same = all(rows[0]["headline"][t] == rows[1]["headline"][t]
                      for t in rows[0]["headline"] if t != args.task)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": str(args.model_dir), "task": args.task, "seed": run.params.seed,
        "train_rows": len(train), "c_grid": list(C_GRID), "cv_accuracy": cv, "chosen_c": c,
        "saved_head_train_accuracy": saved_train_acc, "refit": note,
        "other_tasks_unchanged": others_same, "rows": rows}, indent=2) + "\n")
    if not others_same:
        raise SystemExit("a task other than the refitted one changed its dev score")


if __name__ == "__main__":
    main()
