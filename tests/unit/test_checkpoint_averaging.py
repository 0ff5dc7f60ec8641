"""Checkpoint averaging (``train.average_last_epochs``, pipeline/train/averaging.py): the kept
model is the mean of the weights at the ends of the last k epochs (and, with
``train.average_points_per_epoch``, at evenly spaced points inside them), the mean survives a
checkpoint and resume, and the train summary reports it beside the best single epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pipeline.config import parse_params
from pipeline.errors import UserError
from pipeline.io import read_json
from pipeline.model.multitask import MultitaskModel
from pipeline.train import loop
from pipeline.train.averaging import add_to_mean, averaged_epoch_numbers, mid_epoch_points
from pipeline.train.run import train
from pipeline.train.samplers import SAMPLERS
from pipeline.train.state import TrainState, cpu_copy
from pipeline.train.train_log import TrainLog
from tests.conftest import prepare_for_training, tiny_params_dict
from tests.unit.microtrain import micro_cfg, micro_data, micro_model, weights

TASKS = {"single", "pair", "reg"}


def test_the_running_mean_is_the_plain_mean_and_leaves_its_inputs_alone():
    points = [{"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([4.0], dtype=torch.bfloat16),
               "ids": torch.tensor([3, 4])} for _ in range(3)]
    for i, p in enumerate(points):
        p["w"] *= i + 1  # 1x, 2x, 3x
        p["h"] += 2 * i  # 4, 6, 8
    mean = cpu_copy(points[0])
    for count, point in enumerate(points[1:], start=1):
        before = {k: v.clone() for k, v in mean.items()}
        new = add_to_mean(mean, point, count)
        assert all(torch.equal(mean[k], before[k]) for k in mean)  # the old mean is untouched
        mean = new
    assert torch.allclose(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["h"].dtype == torch.bfloat16 and float(mean["h"]) == 6.0
    assert mean["ids"].dtype == torch.int64 and mean["ids"].tolist() == [3, 4]
    assert points[0]["w"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="at least one point"):
        add_to_mean(mean, points[0], 0)


def test_weights_that_do_not_match_the_mean_are_refused():
    with pytest.raises(ValueError, match="differ from the averaged ones in: b"):
        add_to_mean({"a": torch.zeros(1)}, {"a": torch.zeros(1), "b": torch.zeros(1)}, 1)
    with pytest.raises(ValueError, match=r"'a': shape \(2,\) now, \(1,\) in the mean"):
        add_to_mean({"a": torch.zeros(1)}, {"a": torch.zeros(2)}, 1)


def test_the_averaged_epochs_are_the_last_k_planned():
    assert list(averaged_epoch_numbers(6, 3)) == [4, 5, 6]
    assert list(averaged_epoch_numbers(2, 5)) == [1, 2]
    assert list(averaged_epoch_numbers(0, 3)) == []  # train.epochs 0: nothing to average
    assert list(averaged_epoch_numbers(6, None)) == []


def test_zero_epochs_to_average_fails_at_validation():
    with pytest.raises(UserError, match="average_last_epochs"):
        parse_params(tiny_params_dict(train={"average_last_epochs": 0}))


def _epoch_ends(scores: list[float], epochs: int, last: int | None,
                patience: int | None = None) -> TrainState:
    """End epochs with the given dev ``overall`` scores, every weight set to the epoch."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    state = TrainState(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
                       torch.nn.Module(), None, {}, {})
    cfg = micro_cfg(epochs=epochs, average_last_epochs=last, early_stopping_patience=patience)
    plan = loop.TaskPlan(SAMPLERS["round_robin"](), {"a": 10}, {"a": 3}, cfg,
                         np.random.default_rng(0))
    for overall in scores:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(state.progress.epoch)
        if loop.end_epoch(state, lambda o=overall: {"overall": o}, plan,
                          TrainLog(None, False, 1), cfg):
            break
    return state


def test_epoch_ends_in_the_last_k_enter_the_mean_whatever_their_dev_score():
    state = _epoch_ends([0.5, 0.9, 0.3, 0.4], epochs=4, last=2)
    assert state.progress.averaged == [3, 4]
    assert state.average is not None and bool((state.average["weight"] == 3.5).all())
    assert state.progress.best_epoch == 2  # the best single epoch is still tracked
    assert state.best is not None and bool((state.best["weight"] == 2).all())


def test_early_stopping_averages_the_epochs_of_the_stretch_it_reached():
    inside = _epoch_ends([0.9, 0.5, 0.4, 0.3, 0.2], epochs=5, last=3, patience=2)
    assert inside.progress.averaged == [3] and inside.average is not None
    before = _epoch_ends([0.9, 0.5, 0.4, 0.3, 0.2], epochs=6, last=3, patience=2)
    assert before.progress.averaged == [] and before.average is None


def _micro_fit(cfg: dict[str, Any], checkpoint_dir=None) -> tuple[loop.FitResult, dict]:
    """A micro run (fp32, round robin, seed 0); returns its result and final weights."""
    model = micro_model()
    result = loop.fit(model, micro_data(), micro_data(16, 1),
                      cfg=micro_cfg(precision="fp32", **cfg), sampler="round_robin", seed=0,
                      pad_id=0, in_overall=TASKS, checkpoint_dir=checkpoint_dir,
                      fingerprint="avg")
    return result, weights(model)


def _fit(cfg: dict[str, Any], checkpoint_dir=None) -> tuple[loop.FitResult, dict, list[dict]]:
    """A micro run; returns its result, final weights and the weights at each epoch end."""
    ends: list[dict[str, torch.Tensor]] = []
    real_end_epoch = loop.end_epoch

    def end_epoch(state, *args, **kwargs):
        ends.append(weights(state.model))
        return real_end_epoch(state, *args, **kwargs)

    loop.end_epoch = end_epoch
    try:
        result, final = _micro_fit(cfg, checkpoint_dir)
    finally:
        loop.end_epoch = real_end_epoch
    return result, final, ends


def test_fit_keeps_the_mean_of_the_last_epochs_and_scores_it():
    result, final, ends = _fit({"epochs": 3, "average_last_epochs": 2})
    assert len(ends) == 3
    moved = [k for k in final if final[k].is_floating_point()
             and not torch.equal(ends[1][k], ends[2][k])]
    assert moved
    for k in final:
        if final[k].is_floating_point():
            assert torch.allclose(final[k], (ends[1][k] + ends[2][k]) / 2, atol=1e-6), k
    assert result.average is not None and result.average["epochs"] == [2, 3]
    scores = [h["dev"]["overall"] for h in result.history]
    assert result.best_dev["overall"] == max(scores)  # best_dev stays the best single epoch
    model = micro_model()
    model.load_state_dict(final)
    again = loop.evaluate_sets(model, micro_data(16, 1), 32, 0, torch.device("cpu"), TASKS)
    assert result.average["dev"]["overall"] == pytest.approx(again["overall"])

    plain, plain_final, plain_ends = _fit({"epochs": 3})
    assert plain.average is None
    assert all(torch.equal(plain_ends[i][k], ends[i][k]) for i in range(3) for k in final)
    best = plain_ends[plain.best_epoch - 1]
    assert all(torch.equal(plain_final[k], best[k]) for k in final)


def test_the_mean_survives_a_checkpoint_and_resume(tmp_path):
    straight, straight_final, _ = _fit({"epochs": 3, "average_last_epochs": 2})
    real_train_epoch = loop.train_epoch

    def killed_in_epoch_3(state, *args, **kwargs):
        if state.progress.epoch == 3:
            raise KeyboardInterrupt  # after epoch 2's end was checkpointed, mean included
        return real_train_epoch(state, *args, **kwargs)

    loop.train_epoch = killed_in_epoch_3
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit({"epochs": 3, "average_last_epochs": 2}, tmp_path)
    finally:
        loop.train_epoch = real_train_epoch
    resumed, resumed_final, ends = _fit({"epochs": 3, "average_last_epochs": 2}, tmp_path)
    assert resumed.resumed_from is not None and len(ends) == 1  # only epoch 3 ran again
    assert resumed.average is not None and resumed.average["epochs"] == [2, 3]
    assert all(torch.equal(resumed_final[k], straight_final[k]) for k in straight_final)


def test_the_train_stage_saves_the_mean_and_reports_it_with_wise_ft(tmp_path):
    small = {"train": {"epochs": 2, "precision": "fp32", "lr": 1e-3, "head_lr": 1e-3,
                       "average_last_epochs": 2, "wise_ft_alpha": 1.0},
             "data": {"synthetic": {"train_size": 120, "dev_size": 30, "test_size": 10}}}
    params = parse_params(tiny_params_dict(**small))
    prepare_for_training(params, tmp_path)
    out = tmp_path / "model"
    train(params, tmp_path / "tok", tmp_path / "mlm", out, tmp_path / "live")
    summary = read_json(out / "train_summary.json")
    assert summary["average"]["epochs"] == [1, 2]
    # alpha 1 keeps the trained weights: WiSE-FT scored exactly the mean it was given
    assert summary["wise_ft"]["dev"]["overall"] == pytest.approx(
        summary["average"]["dev"]["overall"])
    assert read_json(tmp_path / "live" / "metrics.json")["average_dev_overall"] == \
        pytest.approx(summary["average"]["dev"]["overall"])
    MultitaskModel.load(out, torch.device("cpu"))  # what was saved loads


def test_the_train_stage_scores_the_epoch_ends_own_mean_beside_a_denser_one(tmp_path):
    def params(points: int):
        return parse_params(tiny_params_dict(
            train={"epochs": 2, "precision": "fp32", "lr": 1e-3, "head_lr": 1e-3,
                   "average_last_epochs": 2, "average_points_per_epoch": points,
                   "wise_ft_alpha": 0.5},
            data={"synthetic": {"train_size": 120, "dev_size": 30, "test_size": 10}}))

    prepare_for_training(params(1), tmp_path)  # the data do not depend on the averaging

    def summary(points: int) -> dict[str, Any]:
        out = tmp_path / f"model-{points}"
        train(params(points), tmp_path / "tok", tmp_path / "mlm", out,
              tmp_path / f"live-{points}")
        return read_json(out / "train_summary.json")

    plain, dense = summary(1), summary(3)
    assert dense["average"]["points"] == 6 and dense["average"]["epochs"] == [1, 2]
    assert "epoch_ends" not in plain["average"] and "epoch_ends" not in plain["wise_ft"]
    # the epoch ends' own mean, before and after the same WiSE-FT mix, is what the run
    # without the option kept and saved
    assert dense["average"]["epoch_ends"]["dev"] == plain["average"]["dev"]
    assert dense["wise_ft"]["epoch_ends"]["dev"] == plain["wise_ft"]["dev"]
    assert dense["wise_ft"]["dev"] != plain["wise_ft"]["dev"]


def test_points_inside_an_epoch_are_evenly_spaced_and_end_before_its_end():
    assert mid_epoch_points(1200, 4) == [300, 600, 900]
    assert mid_epoch_points(6, 3) == [2, 4]
    assert mid_epoch_points(10, 1) == []  # the epoch end only
    assert mid_epoch_points(3, 5) == [1, 2]  # closer than one step: collapsed
    with pytest.raises(UserError, match="average_points_per_epoch"):
        parse_params(tiny_params_dict(train={"average_points_per_epoch": 0}))


def _fit_recording_steps(cfg: dict[str, Any], checkpoint_dir=None, stop_at=None
                         ) -> tuple[loop.FitResult, dict, dict[tuple[int, int], dict]]:
    """A micro run that records the weights after every step by (epoch, plan position);
    ``stop_at`` (epoch, position) kills it there, as a crash would."""
    real_call = loop.Step.__call__
    after: dict[tuple[int, int], dict[str, torch.Tensor]] = {}

    def call(self, chunk):
        prog = self.state.progress
        key = (prog.epoch, prog.pos + len(chunk))
        if key == stop_at:
            raise KeyboardInterrupt
        out = real_call(self, chunk)
        after[key] = weights(self.state.model)
        return out

    loop.Step.__call__ = call
    try:
        result, final = _micro_fit(cfg, checkpoint_dir)
    finally:
        loop.Step.__call__ = real_call
    return result, final, after


def test_points_inside_the_averaged_epochs_join_the_mean():
    cfg = {"epochs": 3, "average_last_epochs": 2, "average_points_per_epoch": 3}
    result, final, after = _fit_recording_steps(cfg)
    points = [after[(e, p)] for e in (2, 3) for p in (2, 4, 6)]  # 6 batch-steps an epoch
    for k in final:
        if final[k].is_floating_point():
            expected = torch.stack([w[k] for w in points]).mean(0)
            assert torch.allclose(final[k], expected, atol=1e-6), k
    assert result.average is not None
    assert result.average["epochs"] == [2, 3] and result.average["points"] == 6
    # the trajectory is the run without the option: only what is kept differs
    plain, plain_final, plain_after = _fit_recording_steps(
        {"epochs": 3, "average_last_epochs": 2})
    assert plain.average is not None and plain.average["points"] == 2
    assert all(torch.equal(plain_after[key][k], after[key][k]) for key in after for k in final)
    assert not all(torch.equal(plain_final[k], final[k]) for k in final)
    # ... and the epoch ends' own mean, kept beside, is exactly what that run kept
    assert plain.epoch_end_mean is None and "epoch_ends" not in plain.average
    assert result.epoch_end_mean is not None
    assert all(torch.equal(result.epoch_end_mean[k], plain_final[k]) for k in final)
    assert result.average["epoch_ends"] == {"epochs": [2, 3], "points": 2,
                                            "dev": plain.average["dev"]}


def test_a_mean_with_points_inside_epochs_survives_a_crash_between_them(tmp_path):
    cfg = {"epochs": 3, "average_last_epochs": 2, "average_points_per_epoch": 3,
           "checkpoint_every": 1}
    straight, straight_final, _ = _fit_recording_steps(cfg)
    with pytest.raises(KeyboardInterrupt):  # after epoch 3's point at 2, before the one at 4
        _fit_recording_steps(cfg, tmp_path, stop_at=(3, 3))
    resumed, resumed_final, after = _fit_recording_steps(cfg, tmp_path)
    assert resumed.resumed_from is not None and min(after) == (3, 3)
    assert resumed.average is not None and resumed.average["points"] == 6
    assert all(torch.equal(resumed_final[k], straight_final[k]) for k in straight_final)
    assert straight.epoch_end_mean is not None and resumed.epoch_end_mean is not None
    assert all(torch.equal(resumed.epoch_end_mean[k], straight.epoch_end_mean[k])
               for k in straight_final)
