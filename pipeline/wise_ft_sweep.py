"""Score a trained model's WiSE-FT mix at other alphas, without training again.

Wortsman et al. 2022 (section 2) pick WiSE-FT's alpha on held-out data. The train stage applies
one alpha (``train.wise_ft_alpha``), so trying another with ``dvc exp run -S
train.wise_ft_alpha=...`` would train the whole run again. The mix is linear, so the trained
weights come back from the saved ones: ``trained = (saved - (1 - a) * start) / a`` for the
run's alpha ``a`` > 0, or the saved weights themselves when the run had no WiSE-FT. ``start``
is the step-0 model rebuilt exactly as the train stage rebuilds it (same seed, same zero-shot
head fits; ``pipeline/train/run.py``). Each alpha of the grid is then scored on the dev sets
with the train stage's own scorer.

The recovery is exact up to float rounding. As a check that ``params.yaml`` and the data
still describe the run that saved the model, the recovered trained weights are scored first
and must reproduce the dev ``overall`` the run recorded for them in ``train_summary.json``
(the mean of the last epochs, or the best epoch). A step-0 model rebuilt from other params
recovers other weights and fails that check. A run without WiSE-FT saved the trained weights
as they are, so there the check covers the data but cannot tell a wrong step-0 model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.config import Params, overall_tasks
from pipeline.errors import UserError
from pipeline.evaluate import primary
from pipeline.io import read_json
from pipeline.model.multitask import MultitaskModel
from pipeline.precision import resolve_precision
from pipeline.train.loop import evaluate_sets
from pipeline.train.run import load_split, read_mlm_manifest, step0_model
from pipeline.train.wise_ft import check_same_layout, interpolate_weights

# How far the trained weights' dev overall, scored again here, may be from the one the run
# recorded: the same weights on another device or thread count can flip a borderline row.
RECORDED_TOLERANCE = 2e-3


def recover_trained(saved: Mapping[str, torch.Tensor], start: Mapping[str, torch.Tensor],
                    alpha: float | None) -> dict[str, torch.Tensor]:
    """The weights before WiSE-FT mixed them at ``alpha`` (None: the run did not mix)."""
    if alpha is None:
        return dict(saved)
    if alpha <= 0.0:
        raise UserError("the model was saved at WiSE-FT alpha 0, which is the step-0 model: "
                        "the trained weights cannot be recovered from it")
    check_same_layout(saved, start, differ="the rebuilt step-0 model differs from the saved "
                      "one", first_is="saved", second_is="rebuilt")
    return {name: ((weight - (1.0 - alpha) * start[name].to(weight)) / alpha
                   if weight.is_floating_point() else weight)
            for name, weight in saved.items()}


def trained_dev(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The dev scores the run recorded for its trained weights before any WiSE-FT mix: the
    mean of the last epochs when it averaged them, else the best epoch."""
    return dict((summary.get("average") or {}).get("dev") or summary["best_dev"])


def dev_scorer(params: Params, model: MultitaskModel, tokenized: Path, meta: Mapping[str, Any],
               device: torch.device) -> Callable[[Mapping[str, torch.Tensor]], dict[str, Any]]:
    """A function that loads weights into ``model`` and returns their dev scores, with the
    train stage's own scorer, batch size and precision (for scoring other weights of a saved
    model without training)."""
    dev_sets = load_split(tokenized, model.tasks, "dev")
    in_overall = overall_tasks(params.tasks)
    precision = resolve_precision(params.train.precision, device)

    def score(weights: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        with torch.no_grad():
            model.load_state_dict(weights)
        return evaluate_sets(model, dev_sets, params.train.eval_batch_size,
                             int(meta["pad_token_id"]), device, in_overall, precision)

    return score


def scored_row(model: MultitaskModel, dev: Mapping[str, Any]) -> dict[str, Any]:
    """One row of a table of dev scores: each task's headline metric, overall, the details."""
    headline = {t: primary(model.tasks[t], dev[t]) for t in model.tasks if t in dev}
    return {"headline": headline, "overall": dev["overall"], "dev": dict(dev)}


def row_line(label: str, row: Mapping[str, Any]) -> str:
    """``row`` (from :func:`scored_row`) as one line of text."""
    return (f"{label}: " + " ".join(f"{t} {v:.4f}" for t, v in row["headline"].items())
            + f" overall {row['overall']:.4f}")


@dataclass
class SavedModel:
    """A workspace's trained model, ready to score other weights of it on dev."""

    params: Params
    meta: dict[str, Any]
    model: MultitaskModel
    weights: dict[str, torch.Tensor]  # as saved (a copy: scoring loads others into ``model``)
    score: Callable[[Mapping[str, torch.Tensor]], dict[str, Any]]  # see :func:`dev_scorer`

    def row(self, weights: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """``weights``' dev scores as a :func:`scored_row`."""
        return scored_row(self.model, self.score(weights))


def open_saved_model(params: Params, model_dir: Path, tokenized: Path,
                     device: torch.device | None = None) -> SavedModel:
    """The model saved in ``model_dir`` with ``params`` (those it was trained with), the token
    metadata and a dev scorer (for the sweep and the benchmarks that edit a saved model's
    weights)."""
    device = device or torch.device("cpu")
    meta = read_json(tokenized / "meta.json")
    model = MultitaskModel.load(model_dir, device)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return SavedModel(params, meta, model, weights,
                      dev_scorer(params, model, tokenized, meta, device))


def sweep(params: Params, tokenized: Path, mlm_dir: Path, model_dir: Path,
          alphas: Sequence[float], device: torch.device | None = None) -> dict[str, Any]:
    """Dev scores of the trained model mixed with its step-0 model at each alpha of
    ``alphas`` (1: the trained model itself), with the alpha the run saved at."""
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise UserError(f"alphas must be in [0, 1] (got {list(alphas)})")
    summary_path = model_dir / "train_summary.json"
    if not summary_path.is_file():
        raise UserError(f"no trained model in {model_dir} ({summary_path.name} is missing): "
                        "run `dvc repro` first")
    summary = read_json(summary_path)
    run_alpha = (summary.get("wise_ft") or {}).get("alpha")
    device = device or torch.device("cpu")
    run = open_saved_model(params, model_dir, tokenized, device)
    model, saved, score = run.model, run.weights, run.score
    start = step0_model(params, read_mlm_manifest(mlm_dir), mlm_dir,
                        load_split(tokenized, model.tasks, "train"), run.meta, device)
    step0 = start.state_dict()
    trained = recover_trained(saved, step0, run_alpha)
    saved_alpha = 1.0 if run_alpha is None else run_alpha
    trained_scores = score(trained)
    recorded = trained_dev(summary)["overall"]
    if abs(trained_scores["overall"] - recorded) > RECORDED_TOLERANCE:
        raise UserError(
            f"{model_dir}: its trained weights score dev overall "
            f"{trained_scores['overall']:.4f} here but {recorded:.4f} in its "
            "train_summary.json, so params.yaml or the data no longer describe the run that "
            "saved it (run `dvc repro`, or `dvc exp apply` the experiment, first)")

    def dev_at(alpha: float) -> dict[str, Any]:
        if alpha == 1.0:
            return trained_scores
        if alpha == saved_alpha:
            # the saved weights themselves: re-mixing the recovered ones differs from them by
            # float rounding, which under bf16 scoring can flip a borderline dev row
            return score(saved)
        return score(interpolate_weights(trained, step0, alpha))

    rows = []
    for alpha in alphas:
        rows.append({"alpha": alpha, **scored_row(model, dev_at(alpha))})
    return {"model": str(model_dir), "run_alpha": run_alpha, "saved_alpha": saved_alpha,
            "rows": rows}


def sweep_table(result: Mapping[str, Any]) -> list[str]:
    """Markdown rows: one per alpha, the run's own alpha marked."""
    tasks = list(result["rows"][0]["headline"])
    lines = ["| alpha | " + " | ".join(tasks) + " | overall |",
             "|---" * (len(tasks) + 2) + "|"]
    for row in result["rows"]:
        mark = " (saved)" if row["alpha"] == result["saved_alpha"] else ""
        cells = [f"{row['headline'][t]:.4f}" for t in tasks]
        lines.append(f"| {row['alpha']:g}{mark} | " + " | ".join(cells)
                     + f" | {row['overall']:.4f} |")
    return lines
