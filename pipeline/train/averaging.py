"""Checkpoint averaging: the saved model is the uniform mean of the weights at the ends of the
last ``train.average_last_epochs`` epochs (and, with ``train.average_points_per_epoch``, at
evenly spaced points inside them).

Vaswani et al. 2017 ("Attention is all you need", section 6.1) saved their base models as the
mean of the last 5 checkpoints; Izmailov et al. 2018 ("Averaging weights leads to wider optima
and better generalization", SWA) showed why it helps: points late on one trajectory lie in
one basin, and their mean sits nearer its flat centre than any of them, which generalises
better. Fine-tuning from one pretrained start keeps every epoch end in such a basin (model
soups, Wortsman et al. 2022, make the same argument across runs).

Where this follows which paper, and where it deviates:
- the points are the epoch ends the run already has, as in checkpoint averaging; SWA instead
  switches to a constant or cyclical learning rate for the averaged stretch and averages once
  per cycle. Here the schedule is left as it is (by default linear decay to 0), so averaging
  changes nothing about the trajectory: the run is the same as without it, and its history
  (the per-epoch dev scores) is the paired comparison;
- ``train.average_points_per_epoch`` > 1 adds evenly spaced points inside each averaged epoch
  (by optimizer steps; the last is still the epoch's end), so the mean samples the stretch
  more densely: towards the tail average of every iterate (Polyak and Juditsky 1992), of
  which the epoch ends are a coarse sample. The stretch is the same; its points' centre moves
  earlier (with k epochs and p points each, from k/2 - 1/2 to (k - 1/p)/2 epochs before the end).
  The epoch ends' own mean is then kept beside the dense one and scored too (after WiSE-FT's
  mix as well, when it is on), so the train summary holds the option's effect measured on one
  trajectory: a paired comparison at the cost of one more dev scoring;
- the mean is uniform and running (``mean += (w - mean) / n``), as SWA's update;
- SWA recomputes batch-norm statistics for the averaged weights; BERT-family encoders have
  only layer norm, which keeps no running statistics, so there is nothing to recompute;
- the averaged epochs are the last k of the planned ``train.epochs``. Early stopping that ends
  the run inside that stretch averages the epochs it reached; one that ends before it leaves
  nothing to average, and the best epoch is saved as without the option;
- low-rank adapters (``model.adapter: lora`` or ``pal_lora``) are averaged factor by factor,
  as the papers average any weight. The update an adapter makes is B·A, bilinear in its
  factors, so the product of the mean factors is not the mean of the epochs' updates.
  Measured once on the leaderboard preset with LoRA (README "Training recipe"): the mean
  scored sst under each of its last two epochs.

Integer buffers (position ids) are equal at every point and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from pipeline.train.wise_ft import check_same_layout


def averaged_epoch_numbers(epochs: int, last: int | None) -> range:
    """The epochs (1-based) whose end weights enter the mean: the last ``last`` of ``epochs``
    (all of them when ``last`` exceeds it; none when ``last`` is None)."""
    if last is None:
        return range(0)
    return range(max(1, epochs - last + 1), epochs + 1)


def mid_epoch_points(plan_length: int, points: int) -> list[int]:
    """The plan positions (batch-steps done) inside an epoch of ``plan_length`` after which
    the weights join the mean, besides the epoch's end: ``points`` evenly spaced points in
    all, the last being the end. Positions closer than one step collapse."""
    inside = {round(k * plan_length / points) for k in range(1, points)}
    return sorted(p for p in inside if 0 < p < plan_length)


def add_to_mean(mean: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                count: int) -> dict[str, torch.Tensor]:
    """The running mean after ``weights`` joins the ``count`` (>= 1) points already in
    ``mean``, on the CPU; ``mean`` itself is left as it was. Non-float tensors are taken from
    ``weights``. (The first point is just a CPU copy: ``state.cpu_copy``.)"""
    if count < 1:
        raise ValueError(f"a running mean needs at least one point already (got {count})")
    check_same_layout(weights, mean, differ="the weights differ from the averaged ones",
                      first_is="now", second_is="in the mean")
    out: dict[str, torch.Tensor] = {}
    for name, weight in weights.items():
        current = weight.detach().to("cpu")
        if current.is_floating_point():
            # computed in fp32 or wider, stored in the weight's own dtype
            acc = mean[name].to(torch.promote_types(current.dtype, torch.float32), copy=True)
            out[name] = acc.add_((current.to(acc.dtype) - acc) / (count + 1)).to(current.dtype)
        else:
            out[name] = current.clone()
    return out
