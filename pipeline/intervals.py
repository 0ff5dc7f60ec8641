"""How sure a difference between two runs' dev scores is: a seed-and-row bootstrap interval.

An ablation differs from ``baseline`` by its params, but also by chance: which dev rows there
are (the dev set is a sample) and which seed trained it. One number per run hides both, so
the ablation table reads each run's dev predictions and resamples them:

1. **Rows, paired.** For one seed, the baseline and the ablation are scored on the same dev
   rows (matched by id), and every bootstrap resample draws row ids once and rescores *both*
   runs on that draw, recomputing the metric (accuracy, or Pearson r, which is not a mean of
   per-row terms). Row difficulty cancels out; only the runs' disagreement is resampled.
2. **Seeds.** A resample first draws the seeds (with replacement) and then, for each draw,
   an independent row resample of that seed's pair; the difference is the mean over the
   drawn seeds. With one seed this is the paired row bootstrap alone.

The 95% interval is the 2.5 / 97.5 percentile of ``RESAMPLES`` such differences, from a
fixed numpy seed, so the same predictions always give the same table. Identical predictions
give exactly [0, 0]. The resamples are vectorised: a resample of rows is a vector of counts
per row, and every metric is a handful of count-weighted sums (one matrix product).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
RNG_SEED = 0
# Count matrices are built this many cells at a time (rows x resamples): bounded memory even
# for a 40k-row dev split.
CHUNK_CELLS = 4_000_000

Kind = Literal["accuracy", "pearson"]


@dataclass(frozen=True)
class TaskDev:
    """One run's dev split of one task: row ids, gold labels and the run's predictions."""

    ids: np.ndarray  # str, unique
    gold: np.ndarray
    pred: np.ndarray
    kind: Kind


RunDev = Mapping[str, TaskDev]  # task -> its dev split, one run


@dataclass(frozen=True)
class Interval:
    """``delta`` (mean over seeds of ablation - baseline, all rows) and its 95% interval."""

    delta: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Comparison:
    """An ablation against the baseline over the seeds both ran: per metric (each task's
    primary metric and ``overall``), the ablation's and the baseline's mean over seeds and
    the interval of the difference."""

    seeds: list[int]
    ablation: dict[str, float]
    baseline: dict[str, float]
    intervals: dict[str, Interval]


def pair(base: TaskDev, other: TaskDev) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gold, baseline pred, other pred) on the rows both runs scored, in baseline order."""
    pos = {i: k for k, i in enumerate(other.ids.tolist())}
    keep = [k for k, i in enumerate(base.ids.tolist()) if i in pos]
    if not keep:
        raise ValueError("the two runs share no dev row id")
    theirs = [pos[i] for i in base.ids[keep].tolist()]
    return (base.gold[keep].astype(np.float64), base.pred[keep].astype(np.float64),
            other.pred[theirs].astype(np.float64))


def _row_counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """(b, n): how often each of n rows is drawn in each of b resamples of n rows."""
    idx = rng.integers(0, n, size=(b, n))
    flat = (idx + np.arange(b)[:, None] * n).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def weighted_metric(kind: Kind, gold: np.ndarray, pred: np.ndarray,
                    w: np.ndarray) -> np.ndarray:
    """The metric of each weighting in ``w`` (b, n) of the rows (all-ones: the plain metric).

    Pearson r of a weighted (resampled) set is recomputed from weighted moments; a constant
    side gives 0.0, as the evaluate stage reports it.
    """
    total = w.sum(axis=1)
    if kind == "accuracy":
        return (w @ (pred.astype(int) == gold.astype(int)).astype(np.float64)) / total
    g, p = gold - gold.mean(), pred - pred.mean()  # centred: no cancellation in the moments
    mg, mp = (w @ g) / total, (w @ p) / total
    cov = (w @ (g * p)) / total - mg * mp
    vg = (w @ (g * g)) / total - mg * mg
    vp = (w @ (p * p)) / total - mp * mp
    denom = np.sqrt(np.clip(vg, 0, None) * np.clip(vp, 0, None))
    ok = denom > 1e-12
    return np.where(ok, cov / np.where(ok, denom, 1.0), 0.0)


def paired_row_bank(kind: Kind, gold: np.ndarray, base: np.ndarray, other: np.ndarray,
                    rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """``resamples`` differences metric(other) - metric(base), each on one row resample
    shared by both runs."""
    n = len(gold)
    out = np.empty(resamples)
    step = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, step):
        w = _row_counts(rng, n, min(step, resamples - start))
        out[start:start + len(w)] = (weighted_metric(kind, gold, other, w)
                                     - weighted_metric(kind, gold, base, w))
    return out


def point(kind: Kind, gold: np.ndarray, pred: np.ndarray) -> float:
    return float(weighted_metric(kind, gold, pred, np.ones((1, len(gold))))[0])


def overall_of(values: Mapping[str, float | np.ndarray], kinds: Mapping[str, Kind],
               overall_tasks: Sequence[str]) -> float | np.ndarray | None:
    """The CS224N ``overall`` (mean of accuracies and (r + 1) / 2) of per-task values;
    None when a task of ``overall_tasks`` is missing."""
    if not overall_tasks or any(t not in values for t in overall_tasks):
        return None
    terms = [(values[t] + 1) / 2 if kinds[t] == "pearson" else values[t] for t in overall_tasks]
    return sum(terms) / len(terms)


def _overall_delta(deltas: Mapping[str, np.ndarray], kinds: Mapping[str, Kind],
                   overall_tasks: Sequence[str]) -> np.ndarray | None:
    """``overall`` is linear in the task metrics: its difference is the mean of the task
    differences, halved for Pearson r."""
    if not overall_tasks or any(t not in deltas for t in overall_tasks):
        return None
    terms = [deltas[t] / 2 if kinds[t] == "pearson" else deltas[t] for t in overall_tasks]
    return sum(terms) / len(terms)


def percentile_interval(banks: np.ndarray, rng: np.random.Generator,
                        level: float = LEVEL) -> tuple[float, float]:
    """Seeds, then rows: ``banks`` (seeds, resamples) holds each seed's paired row resamples;
    each outer resample draws as many seeds with replacement, an independent row resample
    for each draw, and averages them."""
    n_seeds, b = banks.shape
    pick = rng.integers(0, n_seeds, size=(b, n_seeds))
    cols = rng.integers(0, b, size=(b, n_seeds))
    draws = banks[pick, cols].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def compare(baseline: Mapping[int, RunDev], ablation: Mapping[int, RunDev],
            overall_tasks: Sequence[str], resamples: int = RESAMPLES,
            rng_seed: int = RNG_SEED) -> Comparison:
    """The ablation against the baseline on the seeds both ran (baseline seed s paired with
    ablation seed s: same data, same dev rows), every task both scored, and ``overall``."""
    seeds = sorted(set(baseline) & set(ablation))
    if not seeds:
        raise ValueError("the baseline and the ablation share no seed")
    tasks = [t for t in baseline[seeds[0]]
             if all(t in baseline[s] and t in ablation[s] for s in seeds)]
    kinds = {t: baseline[seeds[0]][t].kind for t in tasks}
    rng = np.random.default_rng(rng_seed)
    banks: dict[str, np.ndarray] = {t: np.empty((len(seeds), resamples)) for t in tasks}
    abl: dict[str, list[float]] = {t: [] for t in tasks}
    base: dict[str, list[float]] = {t: [] for t in tasks}
    for k, s in enumerate(seeds):
        for t in tasks:
            gold, b_pred, a_pred = pair(baseline[s][t], ablation[s][t])
            banks[t][k] = paired_row_bank(kinds[t], gold, b_pred, a_pred, rng, resamples)
            abl[t].append(point(kinds[t], gold, a_pred))
            base[t].append(point(kinds[t], gold, b_pred))
    per_seed_a = {t: np.array(v) for t, v in abl.items()}
    per_seed_b = {t: np.array(v) for t, v in base.items()}
    overall_bank = _overall_delta(banks, kinds, overall_tasks)
    if overall_bank is not None:
        banks["overall"] = overall_bank
        per_seed_a["overall"] = overall_of(per_seed_a, kinds, overall_tasks)  # type: ignore[assignment]
        per_seed_b["overall"] = overall_of(per_seed_b, kinds, overall_tasks)  # type: ignore[assignment]
    intervals = {}
    for metric, bank in banks.items():
        low, high = percentile_interval(bank, rng)
        delta = float(np.mean(per_seed_a[metric] - per_seed_b[metric]))
        intervals[metric] = Interval(delta, low, high)
    return Comparison(seeds, {m: float(np.mean(v)) for m, v in per_seed_a.items()},
                      {m: float(np.mean(v)) for m, v in per_seed_b.items()}, intervals)


@dataclass(frozen=True)
class Spread:
    """One metric of one run over its seeds: mean, sample standard deviation, range."""

    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def seed_spread(runs: Mapping[int, RunDev], overall_tasks: Sequence[str]) -> dict[str, Spread]:
    """Each metric of one run (the baseline) at every seed: how far seeds alone move it."""
    per_seed: dict[str, list[float]] = {}
    for s in sorted(runs):
        values = {t: point(d.kind, d.gold.astype(np.float64), d.pred.astype(np.float64))
                  for t, d in runs[s].items()}
        kinds = {t: d.kind for t, d in runs[s].items()}
        overall = overall_of(values, kinds, overall_tasks)
        if overall is not None:
            values["overall"] = float(overall)
        for metric, v in values.items():
            per_seed.setdefault(metric, []).append(v)
    return {m: Spread(v) for m, v in per_seed.items()}
