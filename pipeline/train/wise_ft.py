"""WiSE-FT: the saved model is a weight-space mix of the trained model and its starting point.

Wortsman et al. 2022, "Robust fine-tuning of zero-shot models" (CVPR), section 2: after
fine-tuning, every weight becomes ``θ = α·θ_ft + (1 − α)·θ_0``, where ``θ_0`` is the zero-shot
model (there, CLIP's encoder with its zero-shot classification head). Fine-tuning moves a
pretrained sentence encoder away from the geometry it was trained for; mixing back part of it
keeps some of that without giving up what training added. The paper picks α on held-out data
(0.5 when there is none); this pipeline takes it as a param (``train.wise_ft_alpha``), and
README "Training recipe" has the values measured on the CS224N dev sets.

Here ``θ_0`` is the model at step 0 of training: the pretrained (or MLM) encoder, adapters as
initialised, and the heads as ``model.head_init`` set them - the zero-shot fits of
``pipeline/model/head_init.py`` where a head has one, which is the paper's case. A head
without a zero-shot fit (``sbert``, ``mlp``, ``bilstm``) starts from a seeded random init and
is mixed with that, as the definition says; the paper has no such head. Low-rank adapters
(``lora``, ``pal_lora``) are mixed factor by factor, as every weight: since B starts at zero,
the mixed update is α·B_ft·(α·A_ft + (1 − α)·A_0), not α·B_ft·A_ft, so the adapters' share
of the mix is not α (the paper fine-tunes full weights and has no factored ones). Integer
buffers (position ids) are equal in both and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def check_same_layout(first: Mapping[str, torch.Tensor], second: Mapping[str, torch.Tensor], *,
                      differ: str, first_is: str, second_is: str) -> None:
    """Raise ValueError unless the two state dicts hold the same names with the same shapes
    (the precondition of every weight-space mix: WiSE-FT here, checkpoint averaging)."""
    if first.keys() != second.keys():
        odd = sorted(first.keys() ^ second.keys())
        raise ValueError(f"{differ} in: {', '.join(odd[:5])}")
    for name, weight in first.items():
        if second[name].shape != weight.shape:
            raise ValueError(f"'{name}': shape {tuple(weight.shape)} {first_is}, "
                             f"{tuple(second[name].shape)} {second_is}")


def interpolate_weights(trained: Mapping[str, torch.Tensor], start: Mapping[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """``alpha * trained + (1 - alpha) * start`` for every floating-point tensor; others are
    taken from ``trained``. The two must hold the same names and shapes."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha must be in [0, 1] (got {alpha})")
    check_same_layout(trained, start, differ="the start model differs from the trained one",
                      first_is="after training", second_is="at the start")
    mixed: dict[str, torch.Tensor] = {}
    for name, weight in trained.items():
        origin = start[name]
        mixed[name] = (torch.lerp(origin.to(weight), weight, alpha)
                       if weight.is_floating_point() else weight)
    return mixed


def apply_wise_ft(model: nn.Module, start: nn.Module, alpha: float) -> None:
    """Replace ``model``'s weights, in place, by their WiSE-FT mix with ``start``'s."""
    with torch.no_grad():
        model.load_state_dict(interpolate_weights(model.state_dict(), start.state_dict(), alpha))
