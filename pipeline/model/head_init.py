"""Zero-shot head initialisation: start training where the untrained encoder already is.

A randomly initialised head on top of a pretrained sentence encoder throws away what the
encoder knows: its first gradients are noise that the encoder then learns to follow, and under
a short budget the fine-tuned model ends *below* the encoder's own similarity (measured: sts r
0.838 untouched, 0.438 after 200 steps with a random SBERT head). So before the first step
each head that has a closed-form or convex fit on frozen features is fitted to the train split
(``model.head_init: zero_shot``):

- ``cosine`` head, regression (sts): least squares ``label ~ scale * cos(u, v) + shift``;
- ``cosine`` head, binary (para): a one-feature logistic regression on ``cos(u, v)``, whose
  coefficient and intercept are the head's scale and shift (its logit of class 1);
- ``projected_cosine`` head: the same fits on ``cos(P u, P v)``, with P the identity at init;
- ``linear`` head, classification (sst, cfimdb, cross-encoded pairs): a multinomial logistic
  regression (scikit-learn) on the pooled vector (or ``[u; v]``), i.e. a linear probe.

Step 0 of training then predicts exactly these zero-shot fits, and the ``zero-shot`` ablation
(``train.epochs: 0``) scores them as the floor every run is compared with. Heads without such
a fit (sbert, mlp, bilstm, cosine_penalty) keep their random init; ``relu_cos5`` has no
parameters and is its own zero-shot score.

The features are those the head itself receives (captured with a forward pre-hook), computed
with dropout off in the training's precision (the model the fit describes is the one that
trains), on at most ``model.head_init_rows`` train rows per task (a seeded subset): plenty for
a cosine head's two numbers, and enough for a 384-dim probe, which is regularised
(``PROBE_C``) because it is a starting point, not the final classifier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.data.batching import TaskData, collate
from pipeline.model.heads import CosineHead, Encoded, Head, LinearHead
from pipeline.model.multitask import MultitaskModel
from pipeline.precision import PRECISIONS, Precision

log = logging.getLogger(__name__)

FEATURE_BATCH = 128  # rows per encoder call while collecting features
PROBE_TOL = 1e-6  # solved to the optimum: the probe is a function of the data, not of row order
# Inverse L2 strength of the probe on standardised features. Frozen minilm-l6, 2,000 train rows,
# dev accuracy for C = 0.003 / 0.03 / 0.3 / 3: SST-5 0.391 / 0.373 / 0.362 / 0.358, CFIMDB
# 0.800 / 0.771 / 0.763 / 0.780: a strongly regularised probe generalises best, and its small
# weights are a gentle start for fine-tuning.
PROBE_C = 0.003


@dataclass
class HeadFeatures:
    """What a head saw for a sample of train rows: ``a`` (and ``b`` for siamese pairs)."""

    a: np.ndarray
    b: np.ndarray | None
    labels: np.ndarray


@torch.inference_mode()
def collect_features(model: MultitaskModel, task: str, data: TaskData, rows: np.ndarray,
                     pad_id: int, device: torch.device,
                     precision: Precision = PRECISIONS["fp32"]) -> HeadFeatures:
    """The pooled vectors the head of ``task`` receives for ``rows`` (in length order, with
    their labels)."""
    head = model.heads[task]
    seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def grab(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        a: Encoded = args[0]
        b: Encoded | None = args[1] if len(args) > 1 else None
        seen.append((a.pooled.float().cpu(), None if b is None else b.pooled.float().cpu()))

    regression = model.tasks[task].type == "regression"
    was_training = model.training
    model.eval()
    handle = head.register_forward_pre_hook(grab)
    try:
        order = rows[np.argsort(data.bucket_keys()[rows], kind="stable")]  # less padding
        for start in range(0, len(order), FEATURE_BATCH):
            idx = order[start:start + FEATURE_BATCH]
            batch = {k: v.to(device) for k, v in collate(data, idx, pad_id, regression).items()
                     if k != "labels"}
            with precision.autocast(device):
                model(task, batch)
    finally:
        handle.remove()
        model.train(was_training)
    a = torch.cat([s[0] for s in seen]).numpy()
    b = None if seen[0][1] is None else torch.cat([s[1] for s in seen]).numpy()  # type: ignore[misc]
    return HeadFeatures(a, b, data.labels[order])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine, as ``F.cosine_similarity`` computes it in the ``cosine`` head (the
    peer benchmarks score other embedders with it)."""
    return F.cosine_similarity(torch.from_numpy(a), torch.from_numpy(b), dim=-1).numpy()


def head_cosine(head: CosineHead, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine as the head computes it (``projected_cosine``: after its map)."""
    like = head.scale  # the head's device and dtype (a map P multiplies in it)
    with torch.no_grad():
        cos = head.similarity(torch.from_numpy(a).to(like), torch.from_numpy(b).to(like))
    return cos.double().cpu().numpy()


def fit_cosine_head(head: CosineHead, f: HeadFeatures) -> str:
    """Scale and shift of ``scale * cos + shift`` fitted to the labels."""
    assert f.b is not None
    cos = head_cosine(head, f.a, f.b)
    if head.spec.task_type == "regression":
        var = cos.var()
        scale = float(np.cov(cos, f.labels, bias=True)[0, 1] / var) if var > 0 else 0.0
        shift = float(f.labels.mean() - scale * cos.mean())
    else:
        from sklearn.linear_model import LogisticRegression

        labels = f.labels.astype(np.int64)
        if len(np.unique(labels)) < 2:
            return "skipped (one class in the sample)"
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(cos[:, None], labels)
        scale, shift = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    with torch.no_grad():
        head.scale.fill_(scale)
        head.shift.fill_(shift)
    return f"scale {scale:.3f}, shift {shift:.3f}"


def standardiser(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-feature mean and ONE scale for all features (the RMS of the centred features).

    One scale, not one per feature: sentence encoders have near-constant features (minilm-l6
    has mean-pooled dimensions of magnitude 1e-32), which a per-feature standardisation
    blows up by 1e30, so that dropout or a step of 1e-7 on the encoder turns the probe's logits
    into noise (measured: SST-5 dev 0.36 -> 0.26 after two steps at lr 1e-7). A single scale
    keeps the embedding's geometry and still makes ``PROBE_C`` independent of the encoder's
    scale."""
    mean = x.mean(0)
    return mean, float(np.sqrt(((x - mean) ** 2).mean())) or 1.0


def fit_linear_probe(head: LinearHead, f: HeadFeatures, c: float = PROBE_C) -> str:
    """A multinomial logistic regression on the head's standardised input, at inverse L2
    strength ``c``.

    The probe is fitted on standardised features (:func:`standardiser`); the head keeps the
    standardisation as buffers (see ``LinearHead``), so it computes exactly the probe's logits
    and trains in the probe's coordinates."""
    from sklearn.linear_model import LogisticRegression

    x = f.a if f.b is None else np.concatenate([f.a, f.b], axis=1)
    x = x.astype(np.float64)
    labels = f.labels.astype(np.int64)
    classes = np.unique(labels)
    out = head.proj.out_features
    if len(classes) < 2 or classes.min() < 0 or classes.max() >= out:
        return "skipped (labels in the sample do not cover two valid classes)"
    mean, scale = standardiser(x)
    xs = (x - mean) / scale
    probe = LogisticRegression(C=c, tol=PROBE_TOL, max_iter=5000).fit(xs, labels)
    coef = np.zeros((out, x.shape[1]))
    bias = np.full(out, -30.0)  # a class absent from the sample: never predicted at step 0
    if probe.coef_.shape[0] == 1:  # binary: sklearn keeps one row, the logit of class 1
        coef[classes[1]], bias[classes[1]] = probe.coef_[0], probe.intercept_[0]
        bias[classes[0]] = 0.0
    else:
        coef[classes], bias[classes] = probe.coef_, probe.intercept_
    with torch.no_grad():
        head.input_mean.copy_(torch.from_numpy(mean))
        head.input_scale.fill_(scale)
        head.proj.weight.copy_(torch.from_numpy(coef))
        head.proj.bias.copy_(torch.from_numpy(bias))
    return f"linear probe on {x.shape[1]} features, train acc {probe.score(xs, labels):.3f}"


def has_zero_shot_fit(head: Head) -> bool:
    """Cosine heads, and linear heads of classification tasks (a probe)."""
    return isinstance(head, CosineHead) or (isinstance(head, LinearHead)
                                            and head.spec.task_type == "classification")


def fit_head(head: Head, f: HeadFeatures) -> str:
    """Fit ``head`` (one with :func:`has_zero_shot_fit`) to the frozen features."""
    if isinstance(head, CosineHead):
        return fit_cosine_head(head, f)
    assert isinstance(head, LinearHead)
    return fit_linear_probe(head, f)


def init_heads_zero_shot(model: MultitaskModel, train_sets: dict[str, TaskData], pad_id: int,
                         device: torch.device, max_rows: int, seed: int,
                         precision: Precision = PRECISIONS["fp32"]) -> dict[str, str]:
    """Fit every head that has a zero-shot fit on (a seeded sample of) its train split.

    Returns what was done per task, for the training log and summary."""
    model.to(device)
    done: dict[str, str] = {}
    for i, (task, data) in enumerate(train_sets.items()):
        if len(data) == 0 or not data.has_labels:
            continue
        head = model.heads[task]
        if not has_zero_shot_fit(head):
            done[task] = f"random init ({type(head).__name__} has no zero-shot fit)"
            continue
        rng = np.random.default_rng([seed, 7919, i])
        rows = np.sort(rng.choice(len(data), size=min(max_rows, len(data)), replace=False))
        note = fit_head(head, collect_features(model, task, data, rows, pad_id, device,
                                                   precision))
        done[task] = f"zero-shot fit on {len(rows)} train rows: {note}"
    for task, note in done.items():
        log.info("head init %s: %s", task, note)
    return done
