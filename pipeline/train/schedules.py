"""Learning-rate schedules (``train.schedule``): a multiplier of ``train.lr`` per optimizer step.

Every schedule starts with the same linear warmup over ``train.warmup_ratio`` of the steps, so
the schedules differ only in what follows it. They are plain functions of the step (LambdaLR),
which keeps the scheduler's state a step counter that checkpoints exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pipeline import names


@dataclass(frozen=True)
class ScheduleContext:
    total_steps: int  # optimizer steps over the whole run
    steps_per_epoch: int  # optimizer steps per epoch
    warmup_steps: int
    decay: float  # exponential: factor per epoch


def _warmup(step: int, ctx: ScheduleContext) -> float | None:
    if ctx.warmup_steps and step < ctx.warmup_steps:
        return step / ctx.warmup_steps  # as transformers': lr 0 at the first step
    return None


def constant(step: int, ctx: ScheduleContext) -> float:
    """Warmup, then ``train.lr`` throughout."""
    w = _warmup(step, ctx)
    return 1.0 if w is None else w


def linear(step: int, ctx: ScheduleContext) -> float:
    """Warmup, then linear decay to 0 at the last step (BERT fine-tuning's default)."""
    w = _warmup(step, ctx)
    if w is not None:
        return w
    rest = max(1, ctx.total_steps - ctx.warmup_steps)
    return max(0.0, (ctx.total_steps - step) / rest)


def exponential(step: int, ctx: ScheduleContext) -> float:
    """Warmup, then ``train.lr_decay`` ** (epochs completed): a step drop at each epoch."""
    w = _warmup(step, ctx)
    if w is not None:
        return w
    return ctx.decay ** (step // max(1, ctx.steps_per_epoch))


SCHEDULES: dict[str, Callable[[int, ScheduleContext], float]] = {
    "constant": constant,
    "linear": linear,
    "exponential": exponential,
}
names.check_registry("schedule", SCHEDULES, names.SCHEDULES)


def build_scheduler(name: str, opt: torch.optim.Optimizer,
                    ctx: ScheduleContext) -> torch.optim.lr_scheduler.LambdaLR:
    fn = SCHEDULES[name]
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: fn(step, ctx))
