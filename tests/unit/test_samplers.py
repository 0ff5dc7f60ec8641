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
