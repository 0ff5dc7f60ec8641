"""The seed-and-row bootstrap of `pipeline.intervals` and the verdict rule built on it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.ablation_table import claim_verdict
from pipeline.intervals import TaskDev, compare, point, seed_spread

N = 1000
OVERALL = ["sst", "para", "sts"]


def _ids(n: int = N) -> np.ndarray:
    return np.array([f"row{i}" for i in range(n)], dtype=object)


def _run(rng: np.random.Generator, acc: float = 0.5, noise: float = 1.0) -> dict[str, TaskDev]:
    """sst (5 classes), para (binary) and sts (scores) dev rows with given accuracy / noise."""
    ids = _ids()
    out = {}
    for task, classes in (("sst", 5), ("para", 2)):
        gold = rng.integers(0, classes, N).astype(float)
        pred = np.where(rng.random(N) < acc, gold, (gold + 1) % classes)
        out[task] = TaskDev(ids, gold, pred, "accuracy")
    gold = rng.uniform(0, 5, N)
    out["sts"] = TaskDev(ids, gold, gold + rng.normal(0, noise, N), "pearson")
    return out


def _with(run: dict[str, TaskDev], task: str, pred: np.ndarray) -> dict[str, TaskDev]:
    d = run[task]
    return {**run, task: TaskDev(d.ids, d.gold, pred, d.kind)}


def test_identical_predictions_give_exactly_zero():
    rng = np.random.default_rng(1)
    runs = {13: _run(rng), 14: _run(rng), 15: _run(rng)}
    cmp = compare(runs, runs, OVERALL, resamples=300)
    assert cmp.seeds == [13, 14, 15]
    assert set(cmp.intervals) == {"sst", "para", "sts", "overall"}
    for iv in cmp.intervals.values():
        assert (iv.delta, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert claim_verdict("up", cmp.intervals["overall"]) == "no detectable effect (±0.000)"


def test_a_known_shift_is_covered_and_excludes_zero():
    """The ablation gets 80 more sst rows right (+0.08 accuracy) and halves the sts noise."""
    rng = np.random.default_rng(2)
    base = _run(rng)
    sst = base["sst"]
    fixed = sst.pred.copy()
    wrong = np.flatnonzero(fixed != sst.gold)[:80]
    fixed[wrong] = sst.gold[wrong]
    sts = base["sts"]
    better = sts.gold + (sts.pred - sts.gold) / 2
    ablation = _with(_with(base, "sst", fixed), "sts", better)
    cmp = compare({13: base}, {13: ablation}, OVERALL, resamples=1000)
    iv = cmp.intervals["sst"]
    assert iv.delta == pytest.approx(0.08)
    assert 0 < iv.low <= 0.08 <= iv.high
    r_shift = stats.pearsonr(sts.gold, better)[0] - stats.pearsonr(sts.gold, sts.pred)[0]
    assert cmp.intervals["sts"].delta == pytest.approx(r_shift)
    assert 0 < cmp.intervals["sts"].low <= r_shift <= cmp.intervals["sts"].high
    assert cmp.intervals["para"].half_width == 0.0  # para unchanged: paired rows cancel
    assert cmp.intervals["overall"].delta == pytest.approx((0.08 + r_shift / 2) / 3)
    assert claim_verdict("up", iv) == "agree" and claim_verdict("down", iv) == "disagree"
    assert claim_verdict("flat", iv) == "disagree"


def test_a_pure_noise_ablation_across_seeds_is_no_detectable_effect():
    """Each seed moves the ablation by its own amount (mean 0): precise on each seed's rows,
    but nothing an interval over seeds may call an effect."""
    rng = np.random.default_rng(3)
    base, ablation = {}, {}
    for seed, shift in zip(range(4), (60, -50, 45, -55), strict=True):
        run = _run(rng, acc=0.5)
        sst = run["sst"]
        pred = sst.pred.copy()
        rows = np.flatnonzero(pred != sst.gold if shift > 0 else pred == sst.gold)[:abs(shift)]
        pred[rows] = sst.gold[rows] if shift > 0 else (sst.gold[rows] + 1) % 5
        base[seed], ablation[seed] = run, _with(run, "sst", pred)
    cmp = compare(base, ablation, OVERALL, resamples=2000)
    iv = cmp.intervals["sst"]
    assert iv.low < 0 < iv.high
    verdict = claim_verdict("up", iv)
    assert verdict.startswith("no detectable effect (±") and iv.half_width > 0.03
    # Any single seed alone is a clear effect: it is the seed spread that makes it noise.
    one = compare({0: base[0]}, {0: ablation[0]}, OVERALL, resamples=500).intervals["sst"]
    assert one.excludes_zero


def test_rows_are_paired_by_id_not_position():
    rng = np.random.default_rng(4)
    base = _run(rng)
    order = rng.permutation(N)
    shuffled = {t: TaskDev(d.ids[order], d.gold[order], d.pred[order], d.kind)
                for t, d in base.items()}
    cmp = compare({1: base}, {1: shuffled}, OVERALL, resamples=200)
    assert all(iv.half_width == 0 and iv.delta == 0 for iv in cmp.intervals.values())


def test_pearson_of_a_resample_is_recomputed_like_scipy():
    rng = np.random.default_rng(5)
    gold = rng.normal(size=300)
    pred = gold + rng.normal(size=300)
    assert point("pearson", gold, pred) == pytest.approx(stats.pearsonr(gold, pred)[0])
    assert point("pearson", gold, np.ones(300)) == 0.0  # constant: 0.0 as evaluate reports


def test_seed_spread_of_the_baseline():
    rng = np.random.default_rng(6)
    runs = {1: _run(rng, acc=0.4), 2: _run(rng, acc=0.6)}
    spread = seed_spread(runs, OVERALL)
    assert spread["sst"].values == [point("accuracy", runs[s]["sst"].gold, runs[s]["sst"].pred)
                                    for s in (1, 2)]
    assert spread["sst"].sd > 0.1 and spread["overall"].low < spread["overall"].high
