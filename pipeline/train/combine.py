"""How a training step turns task losses into gradients (``loss.combine``).

Two families:

* single-task steps (``sampled``, the default): the step trains on one task's batch, the task
  the sampler scheduled for it. ``random_task`` is a sampler only (``sampler=random_task``: a
  uniformly random task per step, the SMARTer report's "randomizing the task"); as a loss
  combination it was an alias of ``sampled`` and is refused with a pointer to the sampler.
* all-task steps (``sum``, ``weighted``, ``pcgrad``, ``uncertainty``): the step draws one batch
  of EVERY task and combines their losses, so the sampler's per-step choice is not used (its
  schedule then only fixes the epoch length).

``pcgrad`` (Yu et al., 2020, "Gradient Surgery for Multi-Task Learning") projects each task's
gradient on the shared parameters (the encoder's own weights) off the other tasks' gradients
it conflicts with (negative dot product), visiting the others in a random order per task and
step. Everything task-specific keeps its own gradient: the heads, and the per-task adapters,
even those that live inside the encoder (LoRA, PAL-LoRA, PAL's attention): the paper projects
only the parameters the tasks share (:func:`split_parameters`).
``uncertainty`` (Kendall et al., 2018) weighs task i by exp(-s_i) with a learned
log-variance s_i, a parameter the optimizer trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline import names
from pipeline.model.adapters import is_adapter_param


@dataclass
class BackwardContext:
    shared: list[nn.Parameter]  # parameters every task uses (the encoder's own weights)
    task_only: list[nn.Parameter]  # the rest: heads, adapters (and combiner weights)
    scale: float  # 1 / gradient-accumulation steps
    scaler: torch.amp.GradScaler | None  # fp16 loss scaling
    rng: np.random.Generator  # pcgrad's task order


def split_parameters(model: nn.Module, combiner: nn.Module) -> tuple[
        list[nn.Parameter], list[nn.Parameter]]:
    """(shared, task_only) for :class:`BackwardContext`.

    Shared are the encoder's own weights, the only ones every task's loss depends on. Adapter
    weights inside the encoder belong to one task each, so they go with the heads (and the
    combiner's weights) to the task-only side: PCGrad must not project them, or a task's own
    adapter gradient would be rescaled by another task's conflict."""
    shared = [p for n, p in model.named_parameters()
              if n.startswith("encoder.") and not is_adapter_param(n)]
    shared_ids = {id(p) for p in shared}
    task_only = [p for p in model.parameters() if id(p) not in shared_ids]
    return shared, task_only + list(combiner.parameters())


def _scaled(loss: torch.Tensor, ctx: BackwardContext) -> torch.Tensor:
    loss = loss * ctx.scale
    return ctx.scaler.scale(loss) if ctx.scaler is not None else loss


class Combiner(nn.Module):
    """Base: one combined loss, one ``backward``. Subclasses change the loss or the backward."""

    all_tasks = True  # the step draws a batch of every task

    def __init__(self, tasks: dict[str, str], weights: dict[str, float]) -> None:
        super().__init__()
        self.task_types = tasks  # task -> "classification" | "regression"
        self.weights = weights

    def step_tasks(self, sampled: str) -> list[str]:
        return list(self.task_types) if self.all_tasks else [sampled]

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([losses[t] for t in losses]).sum()

    def backward(self, losses: dict[str, torch.Tensor], ctx: BackwardContext) -> torch.Tensor:
        """Accumulate gradients into ``.grad``; return the combined loss (for logging)."""
        total = self.combine(losses)
        _scaled(total, ctx).backward()
        return total.detach()


class SingleTask(Combiner):
    """One task per step, chosen by the sampler: the loss is that task's loss."""

    all_tasks = False


class Sum(Combiner):
    """Every task's loss, unweighted."""


class Weighted(Combiner):
    """Sum of ``loss.weights[task]`` x loss (tasks not listed weigh 1)."""

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.weights.get(t, 1.0) * v for t, v in losses.items()]).sum()


class Uncertainty(Combiner):
    """Homoscedastic uncertainty weighting (Kendall et al., 2018), s_i = log sigma_i^2:
    classification exp(-s) L + s/2, regression exp(-s) L / 2 + s/2. ``log_vars`` are
    parameters: the loop adds them to the optimizer (no weight decay)."""

    def __init__(self, tasks: dict[str, str], weights: dict[str, float]) -> None:
        super().__init__(tasks, weights)
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in tasks})

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = []
        for t, v in losses.items():
            s = self.log_vars[t]
            factor = 0.5 if self.task_types[t] == "regression" else 1.0
            terms.append(factor * torch.exp(-s) * v + 0.5 * s)
        return torch.stack(terms).sum()


def project_conflicting(grads: list[torch.Tensor], orders: list[list[int]]) -> list[torch.Tensor]:
    """PCGrad's surgery on flat gradients: for each task i, visit the others in ``orders[i]``
    and remove from g_i its component along g_j whenever g_i . g_j < 0 (g_j the ORIGINAL
    gradient, as in the paper's algorithm). Non-conflicting gradients come back unchanged."""
    out = []
    for i, g in enumerate(grads):
        gi = g.clone()
        for j in orders[i]:
            gj = grads[j]
            dot = torch.dot(gi, gj)
            if dot < 0:
                gi -= dot / gj.dot(gj).clamp_min(1e-20) * gj
        out.append(gi)
    return out


class PCGrad(Combiner):
    """Sum of the tasks' losses, with conflicting gradients on the shared parameters projected
    apart before summing. Heads (task-only parameters) get their plain gradients."""

    def backward(self, losses: dict[str, torch.Tensor], ctx: BackwardContext) -> torch.Tensor:
        shared = [p for p in ctx.shared if p.requires_grad]
        tasks = list(losses)
        flat = []
        for t in tasks:
            gs = torch.autograd.grad(_scaled(losses[t], ctx), shared, retain_graph=True,
                                     allow_unused=True)
            flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(gs, shared, strict=True)]).float())
        orders = []
        for i in range(len(tasks)):
            others = [j for j in range(len(tasks)) if j != i]
            orders.append([others[k] for k in ctx.rng.permutation(len(others))])
        merged = torch.stack(project_conflicting(flat, orders)).sum(0)
        offset = 0
        for p in shared:
            n = p.numel()
            g = merged[offset:offset + n].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g
            offset += n
        total = self.combine(losses)
        # The task-specific parameters (heads, adapters) get their own gradients: a task's loss
        # is the only term that depends on them, so the sum's gradient is exactly that task's.
        rest = [p for p in ctx.task_only if p.requires_grad]
        if rest:
            torch.autograd.backward(_scaled(total, ctx), inputs=rest)
        return total.detach()


COMBINERS: dict[str, type[Combiner]] = {
    "sampled": SingleTask,
    "sum": Sum,
    "weighted": Weighted,
    "pcgrad": PCGrad,
    "uncertainty": Uncertainty,
}
names.check_registry("loss combination", COMBINERS, names.COMBINERS)


def build_combiner(name: str, task_types: dict[str, str],
                   weights: dict[str, float]) -> Combiner:
    return COMBINERS[name](task_types, weights)
