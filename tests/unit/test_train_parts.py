"""The parts ``fit`` is made of, each on its own: the train state round-trips through a
checkpoint and a restored run continues exactly as the original; the epoch end keeps the best
epoch and stops after ``patience`` epochs without improvement; one optimizer step applies the
mean of its accumulated gradients, clipped; the log syncs losses once per interval."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from pipeline.config import LossConfig
from pipeline.data.batching import BatchStream, collate
from pipeline.precision import PRECISIONS
from pipeline.train import checkpoint as ckpt
from pipeline.train import loop
from pipeline.train.samplers import SAMPLERS
from pipeline.train.state import Progress, TrainState
from pipeline.train.train_log import TrainLog
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")
TASKS = {"single", "pair", "reg"}


def _equal(a: Any, b: Any) -> bool:
    """Deep equality of state dicts (tensors, arrays, nested containers)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _small_state(seed: int) -> TrainState:
    """A TrainState of small hand-made parts: every slot filled, scaler and teacher included."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    combiner = torch.nn.Module()
    combiner.log_var = torch.nn.Parameter(torch.randn(2))
    opt = torch.optim.AdamW(list(model.parameters()) + [combiner.log_var], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1))
    rng = np.random.default_rng(seed)
    streams = {"a": BatchStream(10, 4, np.random.default_rng([seed, 0]))}
    return TrainState(model, opt, sched, combiner, torch.amp.GradScaler("cpu"), streams,
                      {"sampler": rng, "stream/a": streams["a"].rng},
                      teacher=torch.nn.Linear(3, 2))


def test_train_state_round_trips_every_part_through_save_and_restore(tmp_path):
    a = _small_state(0)
    for _ in range(2):  # optimizer moments, schedule position, stream position, RNG draws
        a.model(torch.ones(1, 3)).sum().backward()
        a.combiner.log_var.sum().backward()
        a.optimizer.step()
        a.scheduler.step()
        next(a.streams["a"])
        a.generators["sampler"].random()
    a.scaler.scale(torch.ones(()))  # the scaler's state exists once it has scaled a loss
    a.scaler.update(1024.0)
    a.keep_best()
    a.add_to_average()
    with torch.no_grad():
        a.model.weight.add_(1.0)  # the best and the mean are copies, not the live weights
    a.progress = Progress(epoch=2, step=7, plan=["a", "b"], pos=1, seen=12,
                          losses={"a": [0.5]}, best={"overall": 0.3}, best_epoch=1,
                          bad_epochs=1, history=[{"epoch": 1}], averaged=[1])
    path = a.save(tmp_path, "fp")
    torch_rng = torch.get_rng_state()

    b = _small_state(1)  # different weights, RNGs and counters everywhere
    torch.manual_seed(123)
    assert b.resume(tmp_path, "other") is None  # a different run's checkpoint is left alone
    assert not _equal(b.model.state_dict(), a.model.state_dict())
    assert b.resume(tmp_path, "fp") == path
    assert _equal(b.model.state_dict(), a.model.state_dict())
    assert _equal(b.teacher.state_dict(), a.teacher.state_dict())
    assert b.best is not None and a.best is not None and _equal(b.best, a.best)
    assert not torch.equal(b.best["weight"], b.model.weight)
    assert b.average is not None and a.average is not None and _equal(b.average, a.average)
    assert _equal(b.optimizer.state_dict(), a.optimizer.state_dict())
    assert _equal(b.scheduler.state_dict(), a.scheduler.state_dict())
    assert _equal(b.combiner.state_dict(), a.combiner.state_dict())
    assert b.scaler.get_scale() == a.scaler.get_scale() == 1024.0
    assert _equal(b.streams["a"].state_dict(), a.streams["a"].state_dict())
    assert b.progress == a.progress
    assert torch.equal(torch.get_rng_state(), torch_rng)
    for name in a.generators:
        assert a.generators[name].random() == b.generators[name].random(), name


def _micro_run(seed: int, **cfg: Any) -> tuple[loop.TrainState, loop.Step, loop.TaskPlan]:
    model = micro_model(seed=seed)
    train_cfg = micro_cfg(**cfg)
    loop.prepare_model(model, train_cfg, CPU, 0)
    return loop.build(model, micro_data(), cfg=train_cfg,
                      loss_cfg=LossConfig(combine="uncertainty",
                                          smart={"enabled": True, "eps": 1e-3}),
                      sampler="round_robin", seed=0, pad_id=0, precision=PRECISIONS["fp32"],
                      device=CPU, dist_ctx=loop.dist.SINGLE)


def test_a_restored_state_continues_exactly_like_the_original(tmp_path):
    state, step, plan = _micro_run(0)
    state.progress.start_epoch(plan.draw(1))
    step(["single", "pair"])
    state.save(tmp_path, "fp")
    rng = ckpt.rng_state({})
    other, other_step, _ = _micro_run(1)
    assert other.resume(tmp_path, "fp") is not None
    assert other.progress == state.progress and other.teacher is not None
    other_step(["reg"])
    ckpt.set_rng_state(rng, {})  # the torch/python RNGs the original would draw from
    step(["reg"])
    mine, theirs = state.model.state_dict(), other.model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert _equal(state.combiner.state_dict(), other.combiner.state_dict())
    assert _equal(state.teacher.state_dict(), other.teacher.state_dict())


def _end_state(epochs: int, patience: int | None) -> tuple[TrainState, loop.TaskPlan, Any]:
    state = _small_state(0)
    cfg = micro_cfg(epochs=epochs, early_stopping_patience=patience)
    plan = loop.TaskPlan(SAMPLERS["round_robin"](), {"a": 10}, {"a": 3}, cfg,
                         np.random.default_rng(0))
    return state, plan, cfg


def _run_epochs(scores: list[float], epochs: int, patience: int | None
                ) -> tuple[TrainState, list[bool]]:
    """End epochs with the given dev ``overall`` scores, the weights set to the epoch."""
    state, plan, cfg = _end_state(epochs, patience)
    stops = []
    for overall in scores:
        with torch.no_grad():
            state.model.weight.fill_(state.progress.epoch)
        stops.append(loop.end_epoch(state, lambda o=overall: {"overall": o}, plan,
                                    TrainLog(None, False, 1), cfg))
        if stops[-1]:
            break
    return state, stops


def test_epoch_end_keeps_the_best_and_stops_after_patience():
    state, stops = _run_epochs([0.5, 0.7, 0.7, 0.6, 0.9], epochs=10, patience=2)
    prog = state.progress
    assert stops == [False, False, False, True]  # a tie is no improvement
    assert prog.best_epoch == 2 and prog.best == {"overall": 0.7}
    assert state.best is not None and bool((state.best["weight"] == 2).all())
    assert [h["epoch"] for h in prog.history] == [1, 2, 3, 4]
    assert prog.history[0]["sampler_p"] == {"a": 1.0}
    assert prog.epoch == 11 and prog.plan is None and prog.pos == 0


def test_epoch_end_without_patience_or_on_the_last_epoch_never_stops_early():
    state, stops = _run_epochs([0.5, 0.4, 0.3, 0.2], epochs=4, patience=None)
    assert stops == [False] * 4 and state.progress.best_epoch == 1
    state, stops = _run_epochs([0.5, 0.4, 0.3], epochs=3, patience=2)
    assert stops == [False] * 3 and state.progress.epoch == 4  # ran out, not stopped


def _expected_grads(state: TrainState, step: loop.Step, chunk: list[str]
                    ) -> dict[str, torch.Tensor]:
    """The mean over the chunk of each batch-step's plain loss gradient, computed by hand
    from copies of the batch streams (the same rows the step will draw)."""
    streams = copy.deepcopy(state.streams)
    params = dict(state.model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for task in chunk:
        regression = task == "reg"
        batch = collate(step.batches.sets[task], next(streams[task]), 0, regression)
        loss = loop.output_loss(state.model.tasks[task], state.model(task, batch),
                                batch["labels"])
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (n, _), g in zip(params.items(), grads, strict=True):
            if g is not None:
                total[n] += g / len(chunk)
    return total


@pytest.mark.parametrize("max_grad_norm", [None, 1e-3])
def test_one_step_applies_the_clipped_mean_of_its_accumulated_gradients(max_grad_norm):
    model = micro_model(dropout=0.0)
    cfg = micro_cfg(max_grad_norm=max_grad_norm, warmup_ratio=0.0)  # a first step with lr > 0
    loop.prepare_model(model, cfg, CPU, 0)
    state, step, _ = loop.build(model, micro_data(), cfg=cfg, loss_cfg=LossConfig(),
                                sampler="round_robin", seed=0, pad_id=0,
                                precision=PRECISIONS["fp32"], device=CPU,
                                dist_ctx=loop.dist.SINGLE)
    chunk = ["single", "reg"]
    expected = _expected_grads(state, step, chunk)
    seen: dict[str, torch.Tensor] = {}
    state.optimizer.register_step_pre_hook(lambda *_: seen.update(
        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses, rows = step(chunk)
    assert [t for t, _ in losses] == chunk and rows == 16
    norm = torch.sqrt(sum((g ** 2).sum() for g in expected.values()))
    scale = 1.0 if max_grad_norm is None else min(1.0, max_grad_norm / float(norm))
    for n, g in seen.items():
        assert torch.allclose(g, expected[n] * scale, rtol=1e-4, atol=1e-7), n
    assert set(seen) == {n for n, g in expected.items() if g.abs().sum() > 0}
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert state.scheduler.last_epoch == 1


class _Live:
    def __init__(self) -> None:
        self.metrics: list[tuple[str, float]] = []
        self.steps = 0

    def log_metric(self, name: str, value: float) -> None:
        self.metrics.append((name, float(value)))

    def next_step(self) -> None:
        self.steps += 1


def test_log_syncs_losses_once_per_interval_and_only_the_main_rank_prints(capsys):
    live, prog = _Live(), Progress(step=0)
    log = TrainLog(live, is_main=True, log_every=2)
    log.start_epoch(1, 1, 4, 0)
    for value in (1.0, 3.0, 5.0):
        log.add([("single", torch.tensor(value))])
        prog.step += 1
        log.after_step(prog, 1, lr=0.5)
        if prog.step == 1:
            assert prog.losses == {} and not live.metrics  # not yet synced
    assert live.metrics == [("train/loss/single", 2.0), ("train/lr", 0.5)] and live.steps == 1
    log.end_epoch(prog)  # the epoch's last loss is synced too
    assert prog.losses == {"single": [1.0, 3.0, 5.0]} and log.pending == []
    log.epoch({"epoch": 1, "dev": {"overall": 0.25, "single": {"acc": 0.5}},
               "train_loss": {"single": 3.0}, "sampler_p": {"single": 1.0}})
    assert ("dev/single/acc", 0.5) in live.metrics and ("epoch", 1.0) in live.metrics
    assert capsys.readouterr().out == "epoch 1: dev overall 0.2500 single=3.000\n"
    quiet = TrainLog(None, is_main=False, log_every=1)
    quiet.early_stop(2)
    quiet.initial({"overall": 0.1})
    assert capsys.readouterr() == ("", "")


def test_regression_loss_is_in_label_units_unless_on_the_unit_range() -> None:
    """sts' 0-5 labels: the default squared error is in label units; ``unit`` is SBERT's
    (scores and labels over the range), 25 times smaller; classification is unaffected."""
    from pipeline.model.multitask import TaskSpec

    sts = TaskSpec("sts", "regression", True, 1, "cosine", 0.0, 5.0)
    out, labels = torch.tensor([1.0, 4.0]), torch.tensor([2.0, 2.0])
    assert float(loop.output_loss(sts, out, labels, "unit")) == pytest.approx(2.5 / 25)
    assert float(loop.output_loss(sts, out, labels)) == pytest.approx(2.5)
    shifted = TaskSpec("score", "regression", True, 1, "cosine", 1.0, 3.0)
    assert float(loop.output_loss(shifted, out, labels, "unit")) == pytest.approx(2.5 / 4)
    binary = TaskSpec("para", "classification", True, 2, "cosine", 0.0, 5.0)
    logits, gold = torch.tensor([[0.0, 2.0]]), torch.tensor([1])
    assert float(loop.output_loss(binary, logits, gold, "unit")) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, gold)))


def test_the_task_plan_passes_the_sampling_weights_to_the_sampler():
    """``train.task_sampling_weight`` reaches the sampler the training loop draws from."""
    sizes, batches = {"a": 1000, "b": 1000}, {"a": 100, "b": 100}
    cfg = micro_cfg(batches_per_epoch=4000, task_sampling_weight={"a": 0.25})
    plan = loop.TaskPlan(SAMPLERS["proportional"](), sizes, batches, cfg,
                         np.random.default_rng(0))
    assert plan.probabilities(1) == pytest.approx({"a": 0.2, "b": 0.8})
    drawn = plan.draw(1)
    assert drawn.count("a") / len(drawn) == pytest.approx(0.2, abs=0.02)
