"""Pooling of token states into one sentence vector (masked, so padding never counts)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from pipeline import names

Pooling = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cls_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return states[:, 0]


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
    return (states * m).sum(1) / m.sum(1).clamp(min=1.0)


def max_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    neg = torch.finfo(states.dtype).min
    return states.masked_fill(~mask.bool().unsqueeze(-1), neg).max(1).values


POOLINGS: dict[str, Pooling] = {"cls": cls_pool, "mean": mean_pool, "max": max_pool}
names.check_registry("pooling", POOLINGS, names.POOLINGS)
