"""Task samplers: which task each training step draws its batch from.

Each sampler turns the tasks' sizes into a per-epoch schedule (a list of task names, one per
step). The epoch has ``train.batches_per_epoch`` steps, or by default the natural length: the
sum of every task's batch count (for ``capped``, its capped counts). Sampling is deterministic
given the numpy Generator passed in. ``probabilities`` gives each task's expected share of
steps: the formula the tests pin the schedules against.

``train.task_sampling_weight`` (``SamplerContext.weights``) multiplies a task's share by its
factor before the shares are renormalised, e.g. ``{sst: 0.5}`` under the temperature sampler:
p_i ∝ w_i N_i^(1/T). Round robin has no shares to weigh (equal
turns by definition) and refuses weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline import names


@dataclass(frozen=True)
class SamplerContext:
    sizes: dict[str, int]  # training examples per task (config order)
    batches: dict[str, int]  # natural batches per task
    epoch: int  # 1-based
    num_epochs: int
    temperature: float = 2.0
    cap: int = 3
    weights: dict[str, float] = field(default_factory=dict)  # per task; missing: 1

    @property
    def tasks(self) -> list[str]:
        return list(self.sizes)


def _normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def _apportion(shares: dict[str, float], n: int) -> dict[str, int]:
    """Integer counts summing to n, proportional to shares (largest remainder, stable)."""
    raw = {t: s * n for t, s in shares.items()}
    counts = {t: int(np.floor(v)) for t, v in raw.items()}
    rest = n - sum(counts.values())
    for t in sorted(raw, key=lambda t: (-(raw[t] - counts[t]), list(raw).index(t)))[:rest]:
        counts[t] += 1
    return counts


class Sampler:
    """Draws tasks i.i.d. from ``probabilities`` (the default for the stochastic samplers)."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        """The sampler's own shares, before ``ctx.weights``."""
        raise NotImplementedError

    def probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        """Each task's expected share of steps: the sampler's shares times the task weights."""
        shares = self.base_probabilities(ctx)
        if not ctx.weights:
            return shares
        return _normalise({t: s * ctx.weights.get(t, 1.0) for t, s in shares.items()})

    def natural_steps(self, ctx: SamplerContext) -> int:
        return sum(ctx.batches.values())

    def schedule(self, ctx: SamplerContext, n_steps: int, rng: np.random.Generator) -> list[str]:
        p = self.probabilities(ctx)
        draws = rng.choice(len(p), size=n_steps, p=np.array(list(p.values())))
        tasks = list(p)
        return [tasks[i] for i in draws]


class Sequential(Sampler):
    """All of task 1's batches, then task 2's, ... (no interleaving; the naive baseline)."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return _normalise({t: float(b) for t, b in ctx.batches.items()})

    def schedule(self, ctx: SamplerContext, n_steps: int, rng: np.random.Generator) -> list[str]:
        counts = _apportion(self.probabilities(ctx), n_steps)
        return [t for t in ctx.tasks for _ in range(counts[t])]


class RoundRobin(Sampler):
    """Tasks take turns, one batch each: equal steps whatever the sizes."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return {t: 1 / len(ctx.tasks) for t in ctx.tasks}

    def schedule(self, ctx: SamplerContext, n_steps: int, rng: np.random.Generator) -> list[str]:
        if any(w != 1.0 for w in ctx.weights.values()):
            others = ", ".join(s for s in names.SAMPLERS if s != "round_robin")
            raise ValueError(f"round_robin gives every task equal turns and takes no task "
                             f"weights; samplers that take weights: {others}")
        return [ctx.tasks[i % len(ctx.tasks)] for i in range(n_steps)]


class Proportional(Sampler):
    """p_i ∝ N_i: every example is seen about equally often."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return _normalise({t: float(n) for t, n in ctx.sizes.items()})


def anneal_alpha(epoch: int, num_epochs: int) -> float:
    """α = 1 − 0.8·(e−1)/(E−1): proportional at the first epoch, near-uniform at the last."""
    if num_epochs <= 1:
        return 1.0
    return 1.0 - 0.8 * (epoch - 1) / (num_epochs - 1)


class Anneal(Sampler):
    """Annealed sampling (Stickland & Murray, 2019): p_i ∝ N_i^α with α decaying by epoch."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        a = anneal_alpha(ctx.epoch, ctx.num_epochs)
        return _normalise({t: float(n) ** a for t, n in ctx.sizes.items()})


class RandomTask(Sampler):
    """Each step picks a task uniformly at random."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return {t: 1 / len(ctx.tasks) for t in ctx.tasks}


class Temperature(Sampler):
    """p_i ∝ N_i^(1/T): T=1 is proportional, larger T flattens towards uniform."""

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return _normalise({t: float(n) ** (1 / ctx.temperature) for t, n in ctx.sizes.items()})


class Capped(Sampler):
    """One pass over the largest task; a smaller task is repeated at most ``cap`` times."""

    def _counts(self, ctx: SamplerContext) -> dict[str, int]:
        most = max(ctx.batches.values())
        return {t: min(most, ctx.cap * b) for t, b in ctx.batches.items()}

    def natural_steps(self, ctx: SamplerContext) -> int:
        return sum(self._counts(ctx).values())

    def base_probabilities(self, ctx: SamplerContext) -> dict[str, float]:
        return _normalise({t: float(c) for t, c in self._counts(ctx).items()})

    def schedule(self, ctx: SamplerContext, n_steps: int, rng: np.random.Generator) -> list[str]:
        counts = _apportion(self.probabilities(ctx), n_steps)
        order = [t for t in ctx.tasks for _ in range(counts[t])]
        return [order[i] for i in rng.permutation(len(order))]


SAMPLERS: dict[str, type[Sampler]] = {
    "sequential": Sequential,
    "round_robin": RoundRobin,
    "proportional": Proportional,
    "anneal": Anneal,
    "random_task": RandomTask,
    "temperature": Temperature,
    "capped": Capped,
}
names.check_registry("sampler", SAMPLERS, names.SAMPLERS)
