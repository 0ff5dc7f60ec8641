"""benchmarks/loss_cost.py's pure parts: the arms' params and the table (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from benchmarks.loss_cost import ARMS, arm_params, markdown, preset_params

DATA = Path(__file__).resolve().parents[2] / "data" / "cs224n"


def test_the_arms_are_the_preset_with_only_its_loss_options_changed() -> None:
    base = preset_params(DATA)
    assert base.train.average_last_epochs is None and base.train.wise_ft_alpha is None
    assert base.tokenize.max_length == 64 and base.sampler == "temperature"
    none, rdrop = arm_params(base, ARMS["none"]), arm_params(base, ARMS["rdrop"])
    assert none.loss.rdrop == {} and none.loss.in_batch_negatives == {}
    assert rdrop.loss.rdrop == {"sst": 1.0}
    assert arm_params(base, ARMS["rdrop+in-batch"]).loss.in_batch_negatives == {"para": 1.0}
    for p in (none, rdrop):  # everything but the loss is the preset's
        assert p.model_dump(exclude={"loss"}) == base.model_dump(exclude={"loss"})


def test_an_invalid_arm_fails_as_params_do() -> None:
    with pytest.raises(ValidationError, match="alpha must be a finite number"):
        arm_params(preset_params(DATA), {"rdrop": {"sst": -1.0}})


def test_the_table_lists_every_arm_with_its_ratio() -> None:
    r = {"command": "python -m benchmarks.loss_cost", "commit": "abc", "date": "d",
         "machine": "m", "torch": "t", "torch_threads": 2, "precision": "bf16",
         "load_average_start": 0.1, "load_average_end": 0.2, "steps": 10, "repeats": 3,
         "task_shares": {"sst": 0.23, "para": 0.47},
         "steps_per_s": {n: 2.0 for n in ARMS},
         "ratio_to_none": {"none": 1.0, "rdrop": 1.3, "in-batch": 1.01,
                           "rdrop+in-batch": 1.31},
         "cpu_ratio_to_none": {"none": 1.0, "rdrop": 1.2, "in-batch": 1.0,
                               "rdrop+in-batch": 1.21},
         "rdrop_pass": {"batches": 30, "once_seconds": 4.2, "twice": 2.01, "stacked": 1.62,
                        "cpu_twice": 1.98, "cpu_stacked": 1.6}}
    text = markdown(r)
    assert "| `rdrop` | rdrop: {'sst': 1.0} | 2.00 | 1.300 | 1.200 |" in text
    assert "| `none` | off | 2.00 | 1.000 | 1.000 |" in text
    assert "sst 23%, para 47%" in text
    assert "two passes 2.010 x the single pass's wall seconds (1.980 x its CPU seconds)" in text
    assert "in one pass (what `loss.rdrop` runs) 1.620 x (1.600 x)." in text
