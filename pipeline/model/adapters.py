"""Per-task adapters inside a BERT-family encoder: PAL, PAL-LoRA and LoRA.

- ``pal`` (Stickland & Murray, 2019): a projected attention layer in parallel with each
  layer's self-attention: LN(h + SA(h) + V_D · MH(V_E · h)). The projections V_E (d_s×d_m)
  and V_D (d_m×d_s) are shared across layers, one pair per task; each layer has its own
  multi-head attention of width d_s (Q/K/V: 3·d_s² weights). Per task and excluding biases
  (it has none): 2·d_m·d_s + L·3·d_s².
- ``pal_lora`` (the PAL-LoRA report): the parallel branch is low rank instead,
  B_l · A_l · dropout_t(h) with rank r and a dropout rate per task: L·2·d_m·r per task.
- ``lora`` (Hu et al., 2021): low-rank updates of the attention projections named in
  ``model.lora_targets`` (default query, key and value; the SMARTer report adapted query and
  key), W x + (α/r)·B_t A_t x: L·|targets|·2·d_m·r per task.

A batch of task t runs through t's adapters only: the model sets ``AdapterContext.task``
(and the padding mask PAL's attention needs) before each encoder call. Every adapter weight
lives under a ``task_adapters`` module, which is how freezing tells them from the encoder.
Written here rather than with ``peft`` because peft switches one active adapter per model,
while a multitask step routes each task's batch through that task's own adapters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.names import ADAPTERS

ADAPTER_MARK = "task_adapters"
LORA_TARGETS = ("query", "key", "value")


@dataclass(frozen=True)
class AdapterSettings:
    kind: str  # none | pal | pal_lora | lora
    tasks: tuple[str, ...]
    pal_size: int | None = None  # d_s; None: 204/768 of the hidden size
    rank: int = 8
    alpha: float = 16.0
    dropout: dict[str, float] | None = None  # per task (pal_lora, lora)
    lora_targets: tuple[str, ...] = LORA_TARGETS  # lora: which of query/key/value to adapt

    def size_for(self, hidden: int) -> int:
        return self.pal_size or max(1, round(hidden * 204 / 768))


class AdapterContext:
    """What the adapters of one encoder call need: the task and the padding mask."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.mask: torch.Tensor | None = None


class PalProjections(nn.Module):
    """One task's V_E and V_D, shared by every layer."""

    def __init__(self, hidden: int, size: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size, bias=False)  # V_E
        self.up = nn.Linear(size, hidden, bias=False)  # V_D
        nn.init.zeros_(self.up.weight)  # start as the plain encoder


class PalAttention(nn.Module):
    """One layer's multi-head attention of width d_s for one task."""

    def __init__(self, size: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(size, size, bias=False)
        self.k = nn.Linear(size, size, bias=False)
        self.v = nn.Linear(size, size, bias=False)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = z.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        attn_mask = None if mask is None else mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(split(self.q(z)), split(self.k(z)),
                                             split(self.v(z)), attn_mask=attn_mask)
        return out.transpose(1, 2).reshape(b, t, d)


class LowRank(nn.Module):
    """dropout -> A (d_in -> r) -> B (r -> d_out), B starting at zero."""

    def __init__(self, d_in: int, d_out: int, rank: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.a = nn.Linear(d_in, rank, bias=False)
        self.b = nn.Linear(rank, d_out, bias=False)
        nn.init.kaiming_uniform_(self.a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(self.drop(x)))


class ParallelAdapterOutput(nn.Module):
    """Replaces a BertSelfOutput: LN(dropout(dense(SA)) + h + adapter_t(h)).

    Keeps the original ``dense``/``LayerNorm``/``dropout`` modules under their names, so the
    encoder's state-dict keys (and pretrained weights) are unchanged.
    """

    def __init__(self, original: nn.Module, ctx: AdapterContext, branches: nn.ModuleDict,
                 shared: dict[str, PalProjections] | None) -> None:
        super().__init__()
        self.dense, self.LayerNorm, self.dropout = (original.dense, original.LayerNorm,
                                                    original.dropout)
        self.task_adapters = branches
        self._ctx = ctx
        self._shared = shared  # plain dict: registered once, on the model, not per layer

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.dense(hidden_states)) + input_tensor
        task = self._ctx.task
        if task is not None and task in self.task_adapters:
            branch = self.task_adapters[task]
            if self._shared is not None:
                proj = self._shared[task]
                x = x + proj.up(branch(proj.down(input_tensor), self._ctx.mask))
            else:
                x = x + branch(input_tensor)
        return self.LayerNorm(x)


class LoraLinear(nn.Linear):
    """A linear layer with a low-rank update per task; the base weight keeps its key."""

    def __init__(self, base: nn.Linear, ctx: AdapterContext, tasks: tuple[str, ...], rank: int,
                 alpha: float, dropout: dict[str, float]) -> None:
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None,
                         device=base.weight.device, dtype=base.weight.dtype)
        self.weight = base.weight
        self.bias = base.bias
        self.scale = alpha / rank
        self._ctx = ctx
        self.task_adapters = nn.ModuleDict({
            t: LowRank(base.in_features, base.out_features, rank, dropout.get(t, 0.0))
            for t in tasks})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        task = self._ctx.task
        if task is not None and task in self.task_adapters:
            out = out + self.scale * self.task_adapters[task](x)
        return out


def install_adapters(encoder: nn.Module, settings: AdapterSettings) -> tuple[
        AdapterContext, nn.Module | None]:
    """Insert adapters into every layer of a BERT-family encoder (in place).

    Returns the context the model sets per call, and the module holding weights shared
    across layers (PAL's projections), which the caller registers once.
    """
    ctx = AdapterContext()
    if settings.kind == "none":
        return ctx, None
    cfg = encoder.config
    hidden, n_heads = cfg.hidden_size, cfg.num_attention_heads
    layers = encoder.encoder.layer
    dropout = settings.dropout or {}
    shared_module: nn.Module | None = None
    if settings.kind == "pal":
        size = settings.size_for(hidden)
        heads = math.gcd(size, n_heads)
        shared = nn.ModuleDict({t: PalProjections(hidden, size) for t in settings.tasks})
        shared_module = nn.ModuleDict({ADAPTER_MARK: shared})
        for layer in layers:
            branches = nn.ModuleDict({t: PalAttention(size, heads) for t in settings.tasks})
            layer.attention.output = ParallelAdapterOutput(layer.attention.output, ctx,
                                                           branches, dict(shared.items()))
    elif settings.kind == "pal_lora":
        for layer in layers:
            branches = nn.ModuleDict({
                t: LowRank(hidden, hidden, settings.rank, dropout.get(t, 0.0))
                for t in settings.tasks})
            layer.attention.output = ParallelAdapterOutput(layer.attention.output, ctx,
                                                           branches, None)
    elif settings.kind == "lora":
        for layer in layers:
            attn = layer.attention.self
            for name in settings.lora_targets:
                setattr(attn, name, LoraLinear(getattr(attn, name), ctx, settings.tasks,
                                               settings.rank, settings.alpha, dropout))
    else:
        raise ValueError(f"unknown adapter '{settings.kind}'; valid: {', '.join(ADAPTERS)}")
    return ctx, shared_module


def is_adapter_param(name: str) -> bool:
    return f"{ADAPTER_MARK}." in name


def adapter_task(name: str) -> str | None:
    """The task an adapter parameter belongs to (the key after ``task_adapters.``)."""
    if not is_adapter_param(name):
        return None
    return name.split(f"{ADAPTER_MARK}.", 1)[1].split(".", 1)[0]
