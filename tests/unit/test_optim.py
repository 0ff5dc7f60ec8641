"""Optimisation options: schedules, gradient accumulation, precision, early stopping and
per-task batch sizes, each reachable as a param."""

import pytest
import torch

from pipeline.config import parse_params
from pipeline.errors import UserError
from pipeline.train import loop
from pipeline.train.loop import fit
from pipeline.train.schedules import SCHEDULES, ScheduleContext
from tests.conftest import deep_merge, default_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

IN_OVERALL = {"single", "pair", "reg"}
CTX = ScheduleContext(total_steps=10, steps_per_epoch=5, warmup_steps=2, decay=0.5)


def test_schedules_after_warmup():
    assert [SCHEDULES["constant"](s, CTX) for s in (0, 1, 2, 9)] == [0.0, 0.5, 1.0, 1.0]
    assert SCHEDULES["linear"](2, CTX) == 1.0 and SCHEDULES["linear"](6, CTX) == 0.5
    assert [SCHEDULES["exponential"](s, CTX) for s in (4, 5, 9)] == [1.0, 0.5, 0.5]


def _fit(**kw):
    return fit(micro_model(), micro_data(), micro_data(16, 1), cfg=micro_cfg(**kw),
               sampler="round_robin", seed=0, pad_id=0, in_overall=IN_OVERALL)


def test_gradient_accumulation_counts_optimizer_steps():
    assert _fit(batches_per_epoch=6, grad_accum_steps=2).steps == 3
    assert _fit(batches_per_epoch=5, grad_accum_steps=2).steps == 3  # last step takes one


def test_early_stopping_stops_without_improvement():
    result = _fit(epochs=6, lr=1e-12, batches_per_epoch=1, early_stopping_patience=2)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_per_task_batch_size(monkeypatch):
    sizes: dict[str, set[int]] = {}
    real = loop.collate

    def spy(data, idx, pad_id, regression):
        sizes.setdefault(data.task, set()).add(len(idx))
        return real(data, idx, pad_id, regression)

    monkeypatch.setattr(loop, "collate", spy)
    _fit(batches_per_epoch=3, task_batch_size={"pair": 4})
    assert sizes == {"single": {8}, "pair": {4}, "reg": {8}}


def test_bf16_runs_on_cpu_and_fp16_is_refused():
    assert _fit(batches_per_epoch=1, precision="bf16").steps == 1
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed where CUDA is present")
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        _fit(batches_per_epoch=1, precision="fp16", device="auto")


@pytest.mark.parametrize("overrides,expected", [
    ({"loss": {"combine": "pcgrd"}}, "pcgrad, sampled, sum, uncertainty, weighted"),
    ({"train": {"schedule": "cosine"}}, "constant, exponential, linear"),
    ({"train": {"precision": "fp8"}}, "auto, bf16, fp16, fp32"),
    ({"train": {"precision": "fp16", "device": "cpu"}}, "fp16 needs CUDA"),
    ({"train": {"resume": "always"}}, "auto"),
    ({"loss": {"weights": {"nope": 2.0}}}, "unknown task(s) nope"),
    ({"train": {"task_batch_size": {"nope": 2}}}, "unknown task(s) nope"),
    ({"train": {"task_encoder_lr_scale": {"nope": 2.0}}},
     "train.task_encoder_lr_scale: unknown task(s) nope; tasks: sst, para, sts, cfimdb"),
    ({"train": {"task_encoder_lr_scale": {"sst": 0.0}}}, "must be > 0"),
    ({"train": {"task_encoder_lr_scale": {"sst": 2.0}}, "loss": {"combine": "pcgrad"}},
     "needs loss.combine=sampled (one task per step); with combine=pcgrad every step trains "
     "every task"),
    ({"sampler": "temperature", "train": {"task_sampling_weight": {"nope": 0.5}}},
     "train.task_sampling_weight: unknown task(s) nope; tasks: sst, para, sts, cfimdb"),
    ({"sampler": "temperature", "train": {"task_sampling_weight": {"sst": 0.0}}},
     "task sampling weights must be > 0"),
    ({"sampler": "temperature", "train": {"task_sampling_weight": {"sst": 0.5}},
      "loss": {"combine": "sum"}},
     "train.task_sampling_weight {'sst': 0.5} needs loss.combine=sampled"),
    ({"sampler": "round_robin", "train": {"task_sampling_weight": {"sst": 0.5}}},
     "round_robin gives equal turns. Samplers that take weights: sequential, proportional, "
     "anneal, random_task, temperature, capped"),
    ({"loss": {"smart": {"eps": -1}}}, "loss.smart.eps"),
    ({"loss": {"combine": "random_task"}},
     "loss.combine: 'random_task' is a sampler, not a loss combination: use "
     "loss.combine=sampled (one task per step) with sampler=random_task"),
])
def test_invalid_training_params_say_what_is_valid(overrides, expected):
    with pytest.raises(UserError) as err:
        parse_params(deep_merge(default_params_dict(), overrides))
    assert expected in str(err.value)


def test_every_new_option_parses():
    p = parse_params(deep_merge(default_params_dict(), {
        "train": {"task_batch_size": {"para": 64}, "schedule": "exponential", "lr_decay": 0.7,
                  "grad_accum_steps": 4, "precision": "bf16", "early_stopping_patience": 2,
                  "checkpoint_every": 50, "resume": "never", "devices": 2},
        "loss": {"combine": "weighted", "weights": {"sst": 2.0},
                 "smart": {"enabled": True, "mu": 0.0}}}))
    assert p.train.batch_size_of("para") == 64
    assert p.train.batch_size_of("sst") == p.train.batch_size != 64
    assert p.loss.smart.enabled and p.loss.weights == {"sst": 2.0}
