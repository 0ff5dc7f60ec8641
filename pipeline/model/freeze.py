"""Which parameters train when, and at which learning rate.

Freeze modes (``model.freeze``):
- ``full``: everything trains;
- ``frozen``: the encoder's own weights stay fixed, heads and adapters train;
- ``two_stage``: ``frozen`` for the first ``model.two_stage_epochs`` epochs, then ``full``.
Parameter groups give the encoder ``train.lr`` and heads/adapters ``train.head_lr``; with
``train.layer_lr_decay`` below 1, the encoder's lower layers get less (Sun et al. 2019).
The optimizer holds every parameter from the start; a frozen one simply has no gradient,
which AdamW skips, so switching stages needs no new optimizer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from torch import nn

from pipeline.model.adapters import is_adapter_param


def is_encoder_weight(name: str) -> bool:
    """The pretrained encoder's own weights (not its adapters, not the heads)."""
    return name.startswith("encoder.") and not is_adapter_param(name)


def encoder_frozen(mode: str, epoch: int, two_stage_epochs: int) -> bool:
    return mode == "frozen" or (mode == "two_stage" and epoch <= two_stage_epochs)


def apply_freeze(model: nn.Module, mode: str, epoch: int, two_stage_epochs: int) -> None:
    """Set ``requires_grad`` for ``epoch`` (1-based) under freeze ``mode``."""
    frozen = encoder_frozen(mode, epoch, two_stage_epochs)
    for name, p in model.named_parameters():
        p.requires_grad_(not (frozen and is_encoder_weight(name)))


def decays(name: str, p: nn.Parameter) -> bool:
    """Whether weight decay applies: matrices do; biases and LayerNorm weights do not (BERT's
    recipe, used by fine-tuning and MLM pre-training alike)."""
    return p.ndim >= 2 and "LayerNorm" not in name


def decay_groups(named: Iterable[tuple[str, nn.Parameter]],
                 weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of one learning rate: decayed parameters, then the rest (no decay)."""
    params = list(named)
    return [{"params": [p for n, p in params if decays(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if not decays(n, p)], "weight_decay": 0.0}]


LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")


def encoder_depth(name: str) -> int | None:
    """Depth of an encoder weight: 0 for the embeddings, i + 1 for transformer layer i (BERT,
    RoBERTa, DistilBERT name them ``...layer.<i>.``), ``None`` for anything else (a final norm,
    a pooler: treated as the top)."""
    if ".embeddings." in name:
        return 0
    m = LAYER_INDEX.search(name)
    return int(m.group(1)) + 1 if m else None


def layer_lr_scales(names: Iterable[str], decay: float) -> dict[str, float]:
    """Layer-wise decreasing learning rate (Sun et al. 2019, "How to fine-tune BERT for text
    classification", section 4.2): layer l trains at ``lr * decay ** (L - l)``, so the top
    layer keeps the full rate, each layer below it ``decay`` times the one above, and the
    embeddings (depth 0) ``decay ** L``. The paper's best on 12-layer BERT-base was 0.95.
    Maps each encoder weight's name to its factor; other names are left out."""
    depths = {n: encoder_depth(n) for n in names if is_encoder_weight(n)}
    top = max((d for d in depths.values() if d is not None), default=0)
    return {n: decay ** (top - (top if d is None else d)) for n, d in depths.items()}


ENCODER_GROUP = "encoder"  # the label of every encoder group :func:`param_groups` makes


def encoder_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The encoder's groups among an optimizer's, by the label :func:`param_groups` gave them
    (``encoder``, ``encoder_x0.9``, ``encoder_no_decay``...; heads are ``heads_adapters...``)."""
    return [g for g in groups if str(g.get("name", "")).startswith(ENCODER_GROUP)]


def param_groups(model: nn.Module, lr: float, head_lr: float | None,
                 weight_decay: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups: encoder vs heads/adapters learning rates (the encoder's scaled per layer
    by ``layer_decay``, see :func:`layer_lr_scales`); no decay on biases/norms."""
    named = list(model.named_parameters())
    scales = layer_lr_scales((n for n, _ in named), layer_decay)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in named:  # heads/adapters keyed by -1: after every encoder scale
        groups.setdefault((scales.get(name, -1.0), decays(name, p)), []).append(p)
    out = []
    for (scale, decay), ps in sorted(groups.items(), reverse=True):
        enc = scale >= 0
        label = ENCODER_GROUP if enc else "heads_adapters"
        if enc and scale != 1.0:
            label += f"_x{scale:.4g}"
        out.append({"params": ps, "lr": lr * scale if enc else (head_lr or lr),
                    "weight_decay": weight_decay if decay else 0.0,
                    "name": label + ("" if decay else "_no_decay")})
    return out
