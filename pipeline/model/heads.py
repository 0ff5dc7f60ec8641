"""Task heads: encoder output -> logits (classification) or a score (regression).

Every head receives ``Encoded`` views of its inputs: one for a single sentence or a
cross-encoded pair, two (``a``, ``b``) for a siamese pair. Most heads read the pooled vector;
``bilstm`` reads the token states. Heads marked ``direct_score`` already output a score in the
task's label range (the cosine heads); for the others the model squashes a regression output
into that range with a sigmoid.

Which head fits which task is decided by ``pipeline.names.head_problem`` (torch-free, used by
params validation), so an invalid combination fails before any work with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline import names


@dataclass
class Encoded:
    states: torch.Tensor  # (B, T, H) token states
    mask: torch.Tensor  # (B, T) 1 for real tokens
    pooled: torch.Tensor  # (B, H)


@dataclass(frozen=True)
class HeadSpec:
    hidden: int
    out: int  # classes, or 1 for regression
    task_type: str  # classification | regression
    siamese: bool  # two encoded inputs (a, b) rather than one
    dropout: float
    mlp_hidden: int
    min_label: float
    max_label: float


def sbert_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[u; v; |u-v|; u*v] (Reimers & Gurevych, 2019)."""
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


class Head(nn.Module):
    direct_score = False

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__()
        self.spec = spec


class LinearHead(Head):
    """Dropout + linear on the pooled vector, or on [u; v] for a siamese pair.

    The input is standardised by fixed buffers (``input_mean``, ``input_scale``; 0 and 1
    unless the zero-shot init set them from the train features, see
    ``head_init.standardiser``), so a probe fitted on standardised features trains in its
    own coordinates instead of being folded into weights on the raw features. The folded
    form, with per-feature scales, collapsed SST-5 dev from 0.38 to 0.21 within 100 steps;
    the cause was near-constant features blown up by their scale, which the single common
    scale of ``standardiser`` removes."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        width = spec.hidden * (2 if spec.siamese else 1)
        self.drop = nn.Dropout(spec.dropout)
        self.proj = nn.Linear(width, spec.out)
        self.register_buffer("input_mean", torch.zeros(width))
        self.register_buffer("input_scale", torch.ones(width))

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        x = a.pooled if b is None else torch.cat([a.pooled, b.pooled], dim=-1)
        return self.proj(self.drop((x - self.input_mean) / self.input_scale))


class MlpHead(Head):
    """Two-layer MLP (GELU) on the pooled vector, or on sbert features of a siamese pair."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        width = spec.hidden * (4 if spec.siamese else 1)
        self.net = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(width, spec.mlp_hidden),
                                 nn.GELU(), nn.Dropout(spec.dropout),
                                 nn.Linear(spec.mlp_hidden, spec.out))

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        x = a.pooled if b is None else sbert_features(a.pooled, b.pooled)
        return self.net(x)


class SbertHead(Head):
    """[u; v; |u-v|; u*v] -> linear."""


    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        self.drop = nn.Dropout(spec.dropout)
        self.proj = nn.Linear(spec.hidden * 4, spec.out)

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        assert b is not None
        return self.proj(self.drop(sbert_features(a.pooled, b.pooled)))


class CosineHead(Head):
    """Cosine similarity with a learnable scale and shift (the Multitask-BERT report).

    Regression: score = clip(scale·cos + shift, min, max). Binary classification:
    the logit of class 1 is scale·cos + shift (class 0's is 0).
    """

    direct_score = True

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        regression = spec.task_type == "regression"
        self.scale = nn.Parameter(torch.tensor(spec.max_label if regression else 5.0))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def similarity(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The cosine the head scales (the zero-shot fit reads it from here too)."""
        return F.cosine_similarity(u, v, dim=-1)

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        assert b is not None
        x = self.scale * self.similarity(a.pooled, b.pooled) + self.shift
        if self.spec.task_type == "regression":
            return x.clamp(self.spec.min_label, self.spec.max_label).unsqueeze(-1)
        return torch.stack([torch.zeros_like(x), x], dim=-1)


class ProjectedCosineHead(CosineHead):
    """``scale * cos(P u, P v) + shift``: the cosine head behind a task's own linear map P.

    A projection head between the shared representation and a similarity loss (Chen et al.
    2020, SimCLR, section 4.2): the loss makes its representation invariant to what the task
    ignores, and with P in between that invariance can live in P instead of in the shared
    encoder, so the encoder keeps what other tasks need (sentiment, for sst) while para and
    sts each learn their own metric. Deviation from SimCLR: P is linear, not an MLP, and
    starts as the identity, so step 0 computes exactly the plain cosine (the zero-shot fit of
    ``cosine`` applies unchanged). Weight decay shrinks P towards 0, which leaves cosines
    unchanged where it shrinks P uniformly."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        self.projection = nn.Linear(spec.hidden, spec.hidden, bias=False)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(spec.hidden))

    def similarity(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.projection(u), self.projection(v), dim=-1)


class ReluCosHead(Head):
    """ReLU(cos(u, v)) scaled to the label range (5 for sts): no parameters of its own."""

    direct_score = True

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        assert b is not None
        cos = F.relu(F.cosine_similarity(a.pooled, b.pooled, dim=-1))
        return (self.spec.min_label + (self.spec.max_label - self.spec.min_label) * cos
                ).unsqueeze(-1)


class CosinePenaltyHead(Head):
    """Linear on [u; v; u*v] plus cos(u, v) on the positive logit (the PAL-LoRA report)."""


    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        self.drop = nn.Dropout(spec.dropout)
        self.proj = nn.Linear(spec.hidden * 3, spec.out)

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        assert b is not None
        u, v = a.pooled, b.pooled
        out = self.proj(self.drop(torch.cat([u, v, u * v], dim=-1)))
        cos = F.cosine_similarity(u, v, dim=-1)
        return torch.cat([out[:, :-1], out[:, -1:] + cos.unsqueeze(-1)], dim=-1)


class BiLstmHead(Head):
    """A BiLSTM over the token states, masked max-pooled; sbert features for siamese pairs."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(spec)
        half = max(spec.hidden // 2, 1)
        self.lstm = nn.LSTM(spec.hidden, half, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(spec.dropout)
        self.proj = nn.Linear(2 * half * (4 if spec.siamese else 1), spec.out)

    def _encode(self, e: Encoded) -> torch.Tensor:
        lengths = e.mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(e.states, lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=e.states.shape[1])
        neg = torch.finfo(out.dtype).min
        return out.masked_fill(~e.mask.bool().unsqueeze(-1), neg).max(1).values

    def forward(self, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        x = self._encode(a) if b is None else sbert_features(self._encode(a), self._encode(b))
        return self.proj(self.drop(x))


HEADS: dict[str, type[Head]] = {
    "linear": LinearHead,
    "mlp": MlpHead,
    "sbert": SbertHead,
    "cosine": CosineHead,
    "projected_cosine": ProjectedCosineHead,
    "relu_cos5": ReluCosHead,
    "cosine_penalty": CosinePenaltyHead,
    "bilstm": BiLstmHead,
}
names.check_registry("head", HEADS, names.HEADS)
