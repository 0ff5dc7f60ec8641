"""Sampler schedules match their formulas and are deterministic given the seed."""

import numpy as np
import pytest

from pipeline.train.samplers import SAMPLERS, SamplerContext, anneal_alpha

SIZES = {"sst": 8544, "para": 141506, "sts": 6040}
BATCHES = {t: -(-n // 32) for t, n in SIZES.items()}


def ctx(epoch=1, epochs=5, **kw):
    return SamplerContext(SIZES, BATCHES, epoch, epochs, **kw)


def shares(schedule):
    return {t: schedule.count(t) / len(schedule) for t in SIZES}


def expected_power(power):
    w = {t: n ** power for t, n in SIZES.items()}
    return {t: v / sum(w.values()) for t, v in w.items()}


@pytest.mark.parametrize("epoch,alpha", [(1, 1.0), (3, 0.6), (5, 0.2)])
def test_anneal_alpha_schedule(epoch, alpha):
    assert anneal_alpha(epoch, 5) == pytest.approx(alpha)


@pytest.mark.parametrize("name,epoch,expected", [
    ("proportional", 1, expected_power(1.0)),
    ("anneal", 1, expected_power(1.0)),
    ("anneal", 3, expected_power(0.6)),
    ("anneal", 5, expected_power(0.2)),
    ("temperature", 1, expected_power(0.5)),  # T = 2
    ("random_task", 1, {t: 1 / 3 for t in SIZES}),
])
def test_stochastic_samplers_match_formula(name, epoch, expected):
    sched = SAMPLERS[name]().schedule(ctx(epoch, temperature=2.0), 60000,
                                      np.random.default_rng(0))
    for t, p in shares(sched).items():
        assert p == pytest.approx(expected[t], abs=0.01), (t, p, expected[t])


def test_round_robin_and_sequential_are_exact():
    rr = SAMPLERS["round_robin"]().schedule(ctx(), 9, np.random.default_rng(0))
    assert rr == ["sst", "para", "sts"] * 3
    seq = SAMPLERS["sequential"]().schedule(ctx(), 1000, np.random.default_rng(0))
    first_change = [i for i in range(1, len(seq)) if seq[i] != seq[i - 1]]
    assert len(first_change) == 2  # one block per task
    assert shares(seq)["para"] == pytest.approx(BATCHES["para"] / sum(BATCHES.values()), abs=1e-3)


def test_capped_repeats_small_tasks_at_most_k_times():
    c = ctx(cap=3)
    s = SAMPLERS["capped"]()
    n = s.natural_steps(c)
    assert n == BATCHES["para"] + 3 * BATCHES["sst"] + 3 * BATCHES["sts"]
    sched = s.schedule(c, n, np.random.default_rng(0))
    assert sched.count("sst") == 3 * BATCHES["sst"] and sched.count("para") == BATCHES["para"]


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_order(name):
    a = SAMPLERS[name]().schedule(ctx(2), 500, np.random.default_rng(7))
    b = SAMPLERS[name]().schedule(ctx(2), 500, np.random.default_rng(7))
    assert a == b and len(a) == 500


def test_task_weights_scale_the_shares_then_renormalise():
    """``train.task_sampling_weight``: p_i ∝ w_i N_i^(1/T) under the temperature sampler."""
    weights = {"sst": 0.5, "sts": 2.0}
    base = expected_power(0.5)
    raw = {t: base[t] * weights.get(t, 1.0) for t in SIZES}
    expected = {t: v / sum(raw.values()) for t, v in raw.items()}
    sampler = SAMPLERS["temperature"]()
    weighted_ctx = ctx(temperature=2.0, weights=weights)
    assert sampler.probabilities(weighted_ctx) == pytest.approx(expected)
    sched = sampler.schedule(weighted_ctx, 60000, np.random.default_rng(0))
    for t, p in shares(sched).items():
        assert p == pytest.approx(expected[t], abs=0.01), (t, p, expected[t])
    # sst's share is halved relative to para's, as the weights say
    got = shares(sched)
    assert got["sst"] / got["para"] == pytest.approx(0.5 * base["sst"] / base["para"], rel=0.05)


@pytest.mark.parametrize("name", ["sequential", "capped"])
def test_task_weights_move_the_counts_of_the_apportioning_samplers(name):
    sampler = SAMPLERS[name]()
    plain = sampler.schedule(ctx(), 3000, np.random.default_rng(0))
    halved = sampler.schedule(ctx(weights={"sst": 0.5}), 3000, np.random.default_rng(0))
    assert len(halved) == len(plain) == 3000
    # sst's steps relative to para's halve (the shares are renormalised, so not sst's alone)
    ratio = halved.count("sst") / halved.count("para")
    assert ratio == pytest.approx(0.5 * plain.count("sst") / plain.count("para"), rel=0.02)
    assert halved.count("para") > plain.count("para")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_weights_of_one_leave_every_schedule_as_it_was(name):
    ones = {t: 1.0 for t in SIZES}
    a = SAMPLERS[name]().schedule(ctx(), 500, np.random.default_rng(3))
    b = SAMPLERS[name]().schedule(ctx(weights=ones), 500, np.random.default_rng(3))
    assert a == b


def test_round_robin_refuses_task_weights():
    with pytest.raises(ValueError, match="round_robin gives every task equal turns"):
        SAMPLERS["round_robin"]().schedule(ctx(weights={"sst": 0.5}), 9,
                                           np.random.default_rng(0))
