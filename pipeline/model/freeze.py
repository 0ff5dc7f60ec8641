"""Which parameters train when, and at which learning rate.

Freeze modes (``model.freeze``):
- ``full``: everything trains;
- ``frozen``: the encoder's own weights stay fixed, heads and adapters train;
- ``two_stage``: ``frozen`` for the first ``model.two_stage_epochs`` epochs, then ``full``.
Parameter groups give the encoder ``train.lr`` and heads/adapters ``train.head_lr``.
The optimizer holds every parameter from the start; a frozen one simply has no gradient,
which AdamW skips, so switching stages needs no new optimizer.
"""

from __future__ import annotations

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


def param_groups(model: nn.Module, lr: float, head_lr: float | None,
                 weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: encoder vs heads/adapters learning rates; no decay on biases/norms."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        key = (is_encoder_weight(name), decays(name, p))
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "lr": lr if enc else (head_lr or lr),
             "weight_decay": weight_decay if decay else 0.0, "name":
             f"{'encoder' if enc else 'heads_adapters'}{'' if decay else '_no_decay'}"}
            for (enc, decay), ps in sorted(groups.items(), reverse=True)]
