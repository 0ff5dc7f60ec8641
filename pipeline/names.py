"""The names params may choose (samplers, poolings, heads, adapters, ...), without torch.

Validating params (``pipeline.config``) must not import the implementations: they pull in torch,
and the CLI, the flows and the ablation checks validate params in processes that never train.
So the names, and which head fits which task, live here; each implementation registry
(``HEADS`` in ``pipeline/model/heads.py``, ``SAMPLERS`` in ``pipeline/train/samplers.py``, ...)
calls :func:`check_registry` on import, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

POOLINGS = ("cls", "mean", "max")
ADAPTERS = ("none", "pal", "pal_lora", "lora")
SCHEDULES = ("constant", "linear", "exponential")
COMBINERS = ("sampled", "sum", "weighted", "pcgrad", "uncertainty")
SAMPLERS = ("sequential", "round_robin", "proportional", "anneal", "random_task", "temperature",
            "capped")
AUTO = "auto"  # train.precision: the best this machine supports; model.pair_head: see resolve_head
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = (AUTO, *PRECISIONS)


@dataclass(frozen=True)
class HeadFit:
    """Which tasks a head can serve."""

    needs_siamese: bool = False  # compares two sentence vectors
    regression_only: bool = False  # outputs a similarity score
    binary_or_regression: bool = False  # one score: regression, or the logit of class 1


HEADS: dict[str, HeadFit] = {
    "linear": HeadFit(),
    "mlp": HeadFit(),
    "sbert": HeadFit(needs_siamese=True),
    "cosine": HeadFit(needs_siamese=True, binary_or_regression=True),
    "projected_cosine": HeadFit(needs_siamese=True, binary_or_regression=True),
    "relu_cos5": HeadFit(needs_siamese=True, regression_only=True),
    "cosine_penalty": HeadFit(needs_siamese=True, binary_or_regression=True),
    "bilstm": HeadFit(),
}
SINGLE_HEADS = tuple(h for h, fit in HEADS.items() if not fit.needs_siamese)
PAIR_HEADS = (AUTO, *HEADS)  # model.pair_head


def check_registry(kind: str, implemented: Iterable[str], declared: Iterable[str]) -> None:
    """Fail at import when an implementation registry and its names here disagree."""
    have, want = set(implemented), set(declared)
    if have != want:
        raise RuntimeError(f"{kind} registry and pipeline/names.py disagree: implemented only "
                           f"{sorted(have - want)}, named only {sorted(want - have)}")


def head_problem(head: str, task_type: str, num_outputs: int, siamese: bool) -> str | None:
    """Why ``head`` cannot serve this task, or None when it can."""
    fit = HEADS[head]
    if fit.needs_siamese and not siamese:
        return f"head '{head}' compares two sentence vectors: it needs a siamese pair task"
    if fit.regression_only and task_type != "regression":
        return f"head '{head}' outputs a similarity score: regression tasks only"
    if fit.binary_or_regression and task_type == "classification" and num_outputs != 2:
        return f"head '{head}' fits regression or binary classification only"
    return None


def resolve_head(head: str, task_type: str, num_outputs: int, siamese: bool) -> str:
    """``auto`` -> ``cosine`` for a siamese regression or binary task (the similarity a
    sentence encoder is trained for, fitted zero-shot), else ``sbert`` (a user's 3-class pair
    task, say); any other name is itself."""
    if head != AUTO:
        return head
    return "cosine" if head_problem("cosine", task_type, num_outputs, siamese) is None else "sbert"


def valid_heads(task_type: str, num_outputs: int, siamese: bool) -> list[str]:
    return [h for h in HEADS if head_problem(h, task_type, num_outputs, siamese) is None]
