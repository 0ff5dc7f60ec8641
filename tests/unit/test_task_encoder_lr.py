"""``train.task_encoder_lr_scale``: the encoder's lr is scaled on the steps that draw a task,
the heads' is not, and the schedule's value comes back after each such step."""

import numpy as np
import pytest
import torch

from pipeline.config import parse_params
from pipeline.train import loop
from pipeline.train.loop import fit, make_optimizer, scaled_encoder_lr
from tests.conftest import deep_merge, default_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model, weights

IN_OVERALL = {"single", "pair", "reg"}
ADAMW_STEP = torch.optim.AdamW.step  # before any test wraps it


def _fit(**kw):
    return fit(micro_model(), micro_data(), micro_data(16, 1), cfg=micro_cfg(**kw),
               sampler="round_robin", seed=0, pad_id=0, in_overall=IN_OVERALL)


def _step_lrs(monkeypatch, **kw) -> list[dict[str, float]]:
    """Each optimizer step's lr per param group, as AdamW.step saw them."""
    seen: list[dict[str, float]] = []

    def spy(self, *args, **kwargs):
        seen.append({g["name"]: g["lr"] for g in self.param_groups})
        return ADAMW_STEP(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    _fit(**kw)
    return seen


def test_the_encoder_steps_at_the_drawn_tasks_factor_and_the_heads_do_not(monkeypatch):
    plain = _step_lrs(monkeypatch, batches_per_epoch=6, schedule="constant", warmup_ratio=0)
    scaled = _step_lrs(monkeypatch, batches_per_epoch=6, schedule="constant", warmup_ratio=0,
                       task_encoder_lr_scale={"single": 3.0, "reg": 0.5})
    assert len(plain) == len(scaled) == 6
    # round_robin draws single, pair, reg, single, pair, reg
    factors = [3.0, 1.0, 0.5, 3.0, 1.0, 0.5]
    for before, after, f in zip(plain, scaled, factors, strict=True):
        for name, lr in before.items():
            expected = lr * f if name.startswith("encoder") else lr
            assert after[name] == pytest.approx(expected, rel=1e-12), name
    assert any(n.startswith("heads") for n in plain[0])  # the heads' groups were checked


def test_an_accumulated_step_takes_the_mean_of_its_tasks_factors(monkeypatch):
    plain = _step_lrs(monkeypatch, batches_per_epoch=6, grad_accum_steps=3,
                      schedule="constant", warmup_ratio=0)
    scaled = _step_lrs(monkeypatch, batches_per_epoch=6, grad_accum_steps=3,
                       schedule="constant", warmup_ratio=0,
                       task_encoder_lr_scale={"single": 4.0})
    for before, after in zip(plain, scaled, strict=True):  # each chunk: single, pair, reg
        assert after["encoder"] == pytest.approx(before["encoder"] * 2.0, rel=1e-12)


def test_the_schedule_takes_over_again_after_a_scaled_step():
    model = micro_model()
    opt = make_optimizer(model, torch.nn.Module(), micro_cfg())
    before = [g["lr"] for g in opt.param_groups]
    with scaled_encoder_lr(opt, 2.5):
        assert [g["lr"] for g in opt.param_groups] != before
    assert [g["lr"] for g in opt.param_groups] == before


def test_a_scaled_step_moves_the_encoder_exactly_that_much_further():
    """AdamW's update, weight decay included, is proportional to lr: factor 2 doubles the
    encoder's step (every encoder weight, embeddings included) and leaves the heads'."""
    deltas = {}
    for factor in (1.0, 2.0):
        model = micro_model(dropout=0.0).double()  # float64: deltas of 1e-7 stay exact
        start = weights(model)
        opt = make_optimizer(model, torch.nn.Module(), micro_cfg(weight_decay=0.01))
        batch = loop.collate(micro_data()["single"], np.arange(8), 0, False)
        out = model("single", batch)
        loop.output_loss(model.tasks["single"], out, batch["labels"]).backward()
        with scaled_encoder_lr(opt, factor):
            opt.step()
        deltas[factor] = {k: v - start[k] for k, v in weights(model).items()}
    for name, d1 in deltas[1.0].items():
        if d1.abs().max() == 0:
            continue
        expected = 2.0 * d1 if name.startswith("encoder.") else d1
        torch.testing.assert_close(deltas[2.0][name], expected, rtol=1e-9, atol=1e-15)
    assert any(k.startswith("encoder.") and d.abs().max() > 0 for k, d in deltas[1.0].items())
    assert any(not k.startswith("encoder.") and d.abs().max() > 0
               for k, d in deltas[1.0].items())


def test_factors_of_one_change_nothing():
    plain = _fit(batches_per_epoch=4)
    ones = _fit(batches_per_epoch=4, task_encoder_lr_scale={"single": 1.0, "pair": 1.0})
    assert ones.best_dev == plain.best_dev


def test_factors_parse_and_a_factor_of_one_is_allowed_with_any_combination():
    p = parse_params(deep_merge(default_params_dict(), {
        "train": {"task_encoder_lr_scale": {"sst": 2.0}}}))
    assert p.train.task_encoder_lr_scale == {"sst": 2.0}
    parse_params(deep_merge(default_params_dict(), {
        "train": {"task_encoder_lr_scale": {"sst": 1.0}}, "loss": {"combine": "sum"}}))
