"""Task heads: map pooled sentence vectors to logits (classification) or a score (regression).

Single-sentence heads take ``u``; pair heads take ``u`` and ``v`` (siamese encoding).
Regression outputs are squashed into the task's label range so sts predictions stay in 0..5.
"""

from __future__ import annotations

import torch
from torch import nn


class LinearHead(nn.Module):
    """Dropout + linear on the pooled vector (single sentences) or on [u; v] (pairs)."""

    pair_input = False

    def __init__(self, hidden: int, out: int, dropout: float, pair: bool) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden * (2 if pair else 1), out)

    def forward(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        x = u if v is None else torch.cat([u, v], dim=-1)
        return self.proj(self.drop(x))


class SbertHead(nn.Module):
    """Sentence-BERT pair features [u; v; |u-v|; u*v] -> linear (Reimers & Gurevych, 2019)."""

    def __init__(self, hidden: int, out: int, dropout: float, pair: bool) -> None:
        super().__init__()
        if not pair:
            raise ValueError("the sbert head needs a sentence pair")
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden * 4, out)

    def forward(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        assert v is not None
        return self.proj(self.drop(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)))


HEADS: dict[str, type[nn.Module]] = {"linear": LinearHead, "sbert": SbertHead}
