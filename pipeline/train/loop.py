"""The multitask training loop.

Each epoch the sampler lays out which task every step trains on. A step draws the next shuffled
batch of that task (or, for the all-task loss combinations, one batch of every task; see
``combine.py``), computes the losses (cross-entropy or MSE, plus SMART's terms when enabled),
lets the combiner turn them into gradients, and every ``grad_accum_steps`` steps takes an AdamW
step under the chosen schedule, with gradients averaged across data-parallel ranks. After each
epoch the dev sets are scored, the best ``overall`` model is kept, in the last
``average_last_epochs`` epochs the weights join a running mean (``averaging.py``), and training
stops early after ``early_stopping_patience`` epochs without improvement. Checkpoints (every
``checkpoint_every`` optimizer steps and at epoch ends) make a killed run resumable to the same
weights as an uninterrupted one.

:func:`fit` reads top to bottom as a loop over named parts: :func:`build` makes the
:class:`~pipeline.train.state.TrainState` (what a checkpoint saves and restores), the
:class:`Step` (one optimizer step) and the :class:`TaskPlan` (the sampler); each epoch is
:func:`train_epoch` then :func:`end_epoch` (dev scores, best weights, early stopping); all
reporting goes through :class:`~pipeline.train.train_log.TrainLog`.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.config import LossConfig, TrainConfig
from pipeline.data.batching import BatchStream, TaskData, collate, num_batches, stack_twice
from pipeline.device import select_device
from pipeline.evaluate import overall_scores, task_metrics
from pipeline.inference import predict
from pipeline.model.freeze import apply_freeze, encoder_groups, param_groups
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.precision import PRECISIONS, Precision, resolve_precision
from pipeline.train import distributed as dist
from pipeline.train.averaging import averaged_epoch_numbers, mid_epoch_points
from pipeline.train.combine import BackwardContext, build_combiner, split_parameters
from pipeline.train.determinism import configure_determinism
from pipeline.train.in_batch import in_batch_negatives_loss
from pipeline.train.rdrop import first_copy, rdrop_loss
from pipeline.train.samplers import SAMPLERS, Sampler, SamplerContext
from pipeline.train.schedules import ScheduleContext, build_scheduler
from pipeline.train.smart import Smart
from pipeline.train.state import TrainState
from pipeline.train.train_log import TrainLog


def output_loss(task: TaskSpec, out: torch.Tensor, labels: torch.Tensor,
                regression_target: str = "label", label_smoothing: float = 0.0
                ) -> torch.Tensor:
    """Cross-entropy for classification; squared error for regression, in label units
    (``regression_target`` "label") or on the label range rescaled to [0, 1] ("unit", as
    SBERT's CosineSimilarityLoss regresses cos on y/5: 25 times smaller on sts' 0-5 range).
    "unit" puts sts' loss on the classification tasks' scale in the shared encoder's AdamW
    moments and gradient clip; measured (README "Training recipe") it did not help sts.

    ``label_smoothing`` eps (classification only) is Szegedy et al. 2016's: the target is
    (1 - eps) on the gold class plus eps / K on every one of the K classes (PyTorch's
    ``cross_entropy(label_smoothing=eps)``)."""
    if task.type != "regression":
        return F.cross_entropy(out.float(), labels, label_smoothing=label_smoothing)
    loss = F.mse_loss(out.float(), labels)
    if regression_target == "unit":
        loss = loss / (task.max_label - task.min_label) ** 2
    return loss


def task_loss(model: MultitaskModel, task: str, batch: dict[str, torch.Tensor],
              regression_target: str = "label") -> torch.Tensor:
    return output_loss(model.tasks[task], model(task, batch), batch["labels"],
                       regression_target)


def evaluate_sets(model: MultitaskModel, sets: dict[str, TaskData], batch_size: int,
                  pad_id: int, device: torch.device,
                  in_overall: set[str], precision: Precision = PRECISIONS["fp32"]
                  ) -> dict[str, Any]:
    """Dev metrics of every labelled set plus ``overall``/``overall_mean``."""
    per_task: dict[str, dict[str, float]] = {}
    for task, data in sets.items():
        if len(data) == 0 or not data.has_labels:
            continue
        p = predict(model, data, batch_size, pad_id, device, precision)
        per_task[task] = task_metrics(model.tasks[task], data.labels, p.pred, p.scores)
    return {**per_task, **overall_scores(model.tasks, per_task, in_overall)}


def make_optimizer(model: MultitaskModel, combiner: torch.nn.Module,
                   cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the model and the combiner's own parameters (uncertainty's log-variances,
    trained like any weight but never decayed)."""
    groups = param_groups(model, cfg.lr, cfg.head_lr, cfg.weight_decay,
                          cfg.layer_lr_decay)
    if list(combiner.parameters()):
        groups.append({"params": list(combiner.parameters()), "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=cfg.lr, **adamw_kernel(model))


def adamw_kernel(model: torch.nn.Module) -> dict[str, bool]:
    """The fastest AdamW implementation for where the weights live: the fused kernel (one
    kernel for every tensor) on CPU/CUDA, else the multi-tensor ``foreach`` one; the default
    per-tensor Python loop costs a noticeable share of a CPU step."""
    device = next(model.parameters()).device.type
    return {"fused": True} if device in ("cpu", "cuda") else {"foreach": True}


@dataclass
class FitResult:
    """What a training run reports (the DVC stage writes it to train_summary.json)."""

    best_epoch: int
    best_dev: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0  # training steps only (dev scoring left out)
    stopped_early: bool = False
    resumed_from: str | None = None
    precision: str = "fp32"  # what train.precision resolved to on this device
    # train.average_last_epochs: the averaged epochs and the mean's dev scores (the model
    # then holds the mean; best_epoch/best_dev stay the best single epoch's); with points
    # inside the epochs, also "epoch_ends": the epoch ends' own mean and its dev scores
    average: dict[str, Any] | None = None
    # the epoch ends' own mean (weights, CPU) when points inside the epochs were averaged:
    # the train stage mixes it with the step-0 model too, to report it after WiSE-FT
    epoch_end_mean: dict[str, torch.Tensor] | None = field(default=None, repr=False)


@dataclass
class TaskPlan:
    """Which task each batch-step of an epoch trains on: the sampler over the tasks' sizes
    (and, for the samplers that anneal, the epoch), drawn from the run's sampler RNG."""

    sampler: Sampler
    sizes: dict[str, int]  # training rows per task
    batches: dict[str, int]  # batches per task in one pass (all ranks together)
    cfg: TrainConfig
    rng: np.random.Generator

    def context(self, epoch: int) -> SamplerContext:
        return SamplerContext(self.sizes, self.batches, epoch, self.cfg.epochs,
                              self.cfg.sampler_temperature, self.cfg.sampler_cap,
                              dict(self.cfg.task_sampling_weight))

    @property
    def steps_per_epoch(self) -> int:
        """Batch-steps per epoch: ``train.batches_per_epoch``, else the sampler's own count."""
        return self.cfg.batches_per_epoch or self.sampler.natural_steps(self.context(1))

    def draw(self, epoch: int) -> list[str]:
        return self.sampler.schedule(self.context(epoch), self.steps_per_epoch, self.rng)

    def probabilities(self, epoch: int) -> dict[str, float]:
        return self.sampler.probabilities(self.context(epoch))


@dataclass
class Batches:
    """Each task's next shuffled batch (this rank's shard), collated and on the device."""

    sets: dict[str, TaskData]
    streams: dict[str, BatchStream]
    pad_id: int
    device: torch.device
    regression: dict[str, bool]

    def next(self, task: str) -> tuple[dict[str, torch.Tensor], int]:
        """The next batch of ``task`` and its number of rows."""
        idx = next(self.streams[task])
        batch = collate(self.sets[task], idx, self.pad_id, self.regression[task])
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}, len(idx)


@contextmanager
def scaled_encoder_lr(opt: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """The encoder's param groups (:func:`encoder_groups`) at ``factor``
    times their lr for one optimizer step, then back to the schedule's value. AdamW's update,
    decoupled weight decay included, is proportional to lr, so this scales that step's encoder
    update by ``factor`` exactly; the moments are shared by every task, so a step of task A
    still carries the momentum of the steps before it (beta1 0.9: about the last ten)."""
    if factor == 1.0:
        yield
        return
    groups = encoder_groups(opt.param_groups)
    kept = [g["lr"] for g in groups]
    for g in groups:
        g["lr"] = g["lr"] * factor
    try:
        yield
    finally:
        for g, lr in zip(groups, kept, strict=True):
            g["lr"] = lr


@dataclass
class Step:
    """One optimizer step over a chunk of up to ``train.grad_accum_steps`` batch-steps: each
    batch-step's losses (under the precision's autocast, SMART's terms added per task) are
    turned into gradients by the combiner, scaled by 1/chunk length so the step sees their
    mean; then :meth:`apply` takes the step."""

    state: TrainState
    batches: Batches
    precision: Precision
    smart: Smart | None
    shared: list[torch.nn.Parameter]  # see combine.split_parameters
    task_only: list[torch.nn.Parameter]
    trained: list[torch.nn.Parameter]  # the model's, then the combiner's: averaged, clipped
    max_grad_norm: float | None
    dist_ctx: dist.DistContext
    # the per-task loss options: regression_target (see output_loss), label_smoothing,
    # rdrop (train/rdrop.py), in_batch_negatives and in_batch_scale (train/in_batch.py)
    loss_cfg: LossConfig = field(default_factory=LossConfig)
    encoder_lr_scale: dict[str, float] = field(default_factory=dict)  # train.task_encoder_lr_scale

    def __call__(self, chunk: list[str]) -> tuple[list[tuple[str, torch.Tensor]], int]:
        """Train on ``chunk`` (one sampled task per batch-step); returns the detached task
        losses, for the log, and the number of rows read."""
        state = self.state
        state.optimizer.zero_grad(set_to_none=True)
        back = BackwardContext(self.shared, self.task_only, 1 / len(chunk), state.scaler,
                               state.generators["aux"])
        logged: list[tuple[str, torch.Tensor]] = []
        rows = 0
        for sampled in chunk:
            losses, n = self.losses(sampled)
            # A parameter-free head on a frozen encoder without adapters has nothing to
            # train in this stage: its loss is logged, its backward skipped.
            trainable = {t: v for t, v in losses.items() if v.requires_grad}
            if trainable:
                state.combiner.backward(trainable, back)
            logged.extend((t, v.detach()) for t, v in losses.items())
            rows += n
        # The step takes the mean of its batch-steps' gradients, so the mean of their factors.
        self.apply(sum(self.encoder_lr_scale.get(t, 1.0) for t in chunk) / len(chunk))
        return logged, rows

    def losses(self, sampled: str) -> tuple[dict[str, torch.Tensor], int]:
        """The losses of one batch-step (the sampled task's, or every task's for the all-task
        combinations) and the rows it read."""
        model, device = self.state.model, self.batches.device
        losses: dict[str, torch.Tensor] = {}
        rows = 0
        for task in self.state.combiner.step_tasks(sampled):
            batch, n = self.batches.next(task)
            cfg = self.loss_cfg
            alpha = cfg.rdrop.get(task, 0.0)
            with self.precision.autocast(device):
                if alpha:  # R-Drop: the batch twice in one pass, two dropout draws per row
                    a, b = model.encode_inputs(task, stack_twice(batch))
                    out, again = model.score(task, a, b).chunk(2)
                    a, b = first_copy(a), (first_copy(b) if b is not None else None)
                    loss = rdrop_loss(self.task_output_loss(task, out, batch["labels"]),
                                      self.task_output_loss(task, again, batch["labels"]),
                                      out, again, alpha)
                else:
                    a, b = model.encode_inputs(task, batch)
                    out = model.score(task, a, b)
                    loss = self.task_output_loss(task, out, batch["labels"])
                ranked = cfg.in_batch_negatives.get(task, 0.0)
                if ranked and b is not None:  # the sentence vectors the head compared
                    loss = loss + ranked * in_batch_negatives_loss(
                        a.pooled, b.pooled, batch["labels"], cfg.in_batch_scale)
                if self.smart is not None:
                    loss = loss + self.smart.penalty(model, task, batch, out)
            losses[task] = loss
            rows += n
        return losses, rows

    def task_output_loss(self, task: str, out: torch.Tensor, labels: torch.Tensor
                         ) -> torch.Tensor:
        return output_loss(self.state.model.tasks[task], out, labels,
                           self.loss_cfg.regression_target,
                           self.loss_cfg.label_smoothing.get(task, 0.0))

    def apply(self, encoder_lr_factor: float = 1.0) -> None:
        """Average the accumulated gradients across ranks (exactly: the same mean as one
        process on the whole batches), unscale (fp16), clip, step AdamW (the encoder's groups
        at ``encoder_lr_factor`` times the schedule's lr, ``train.task_encoder_lr_scale``)
        and the schedule, and let SMART's teacher follow the new weights."""
        state = self.state
        dist.average_gradients(self.trained, self.dist_ctx)
        if state.scaler is not None:
            state.scaler.unscale_(state.optimizer)
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.trained, self.max_grad_norm)
        with scaled_encoder_lr(state.optimizer, encoder_lr_factor):
            if state.scaler is not None:
                state.scaler.step(state.optimizer)
                state.scaler.update()
            else:
                state.optimizer.step()
        state.scheduler.step()
        if self.smart is not None:
            self.smart.update_teacher(state.model)


@dataclass(frozen=True)
class Checkpoints:
    """Where this rank writes checkpoints: None when the run has no checkpoint dir or this
    is not the main rank (every rank holds the same state; one writes it)."""

    dir: Path | None
    fingerprint: str

    def save(self, state: TrainState) -> None:
        if self.dir is not None:
            state.save(self.dir, self.fingerprint)


def prepare_model(model: MultitaskModel, cfg: TrainConfig, device: torch.device,
                  seed: int) -> None:
    """Determinism switches, the device, train mode, ``train.compile``, and the seeds of the
    torch and Python RNGs (dropout, SMART's noise), before anything draws from them."""
    configure_determinism(device, cfg.deterministic)  # bitwise-reproducible runs and resumes
    model.to(device).train()
    if cfg.compile:
        # In place, so parameter names (checkpoints, saved weights) are unchanged.
        model.encoder.compile(dynamic=True)
    torch.manual_seed(seed)
    random.seed(seed)


def make_streams(train_sets: dict[str, TaskData], cfg: TrainConfig, seed: int,
                 dist_ctx: dist.DistContext) -> dict[str, BatchStream]:
    """One shuffled batch stream per non-empty task, each with its own RNG, sharded by rank."""
    return {t: BatchStream(len(d), cfg.batch_size_of(t), np.random.default_rng([seed, i]),
                           dist_ctx.rank, dist_ctx.world_size,
                           lengths=d.bucket_keys() if cfg.length_bucketing else None)
            for i, (t, d) in enumerate(train_sets.items()) if len(d) > 0}


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """``train.schedule`` over the run's optimizer steps (batch-steps / accumulation)."""
    per_epoch = math.ceil(steps_per_epoch / cfg.grad_accum_steps)
    total = per_epoch * cfg.epochs
    return build_scheduler(cfg.schedule, opt, ScheduleContext(
        total, per_epoch, math.ceil(cfg.warmup_ratio * total), cfg.lr_decay))


def build(model: MultitaskModel, train_sets: dict[str, TaskData], *, cfg: TrainConfig,
          loss_cfg: LossConfig, sampler: str, seed: int, pad_id: int, precision: Precision,
          device: torch.device, dist_ctx: dist.DistContext
          ) -> tuple[TrainState, Step, TaskPlan]:
    """The run's parts, each RNG seeded from ``seed``: the state a checkpoint restores, the
    optimizer step and the task plan. Rank 0's weights are broadcast to the other ranks."""
    rng = np.random.default_rng(seed)
    aux_rng = np.random.default_rng([seed, 1_000_003])  # pcgrad's task order
    streams = make_streams(train_sets, cfg, seed, dist_ctx)
    sizes = {t: len(train_sets[t]) for t in streams}
    plan = TaskPlan(SAMPLERS[sampler](), sizes,
                    {t: num_batches(n, cfg.batch_size_of(t) * dist_ctx.world_size)
                     for t, n in sizes.items()}, cfg, rng)
    combiner = build_combiner(loss_cfg.combine, {t: model.tasks[t].type for t in streams},
                              loss_cfg.weights).to(device)
    smart = Smart(loss_cfg.smart, model) if loss_cfg.smart.enabled else None
    opt = make_optimizer(model, combiner, cfg)
    state = TrainState(
        model, opt, make_scheduler(opt, cfg, plan.steps_per_epoch), combiner,
        precision.scaler(device), streams,
        {"sampler": rng, "aux": aux_rng, **{f"stream/{t}": s.rng for t, s in streams.items()}},
        teacher=smart.teacher if smart is not None else None)
    regression = {t: model.tasks[t].type == "regression" for t in streams}
    shared, task_only = split_parameters(model, combiner)
    step = Step(state, Batches(train_sets, streams, pad_id, device, regression), precision,
                smart, shared, task_only, list(model.parameters()) + list(combiner.parameters()),
                cfg.max_grad_norm, dist_ctx, loss_cfg, cfg.task_encoder_lr_scale)
    dist.broadcast_parameters(model, dist_ctx)
    return state, step, plan


def train_epoch(state: TrainState, step: Step, plan: TaskPlan, log: TrainLog,
                cfg: TrainConfig, saves: Checkpoints) -> float:
    """Train the current epoch's plan from where it stands (mid-epoch after a resume),
    checkpointing every ``train.checkpoint_every`` optimizer steps; returns its seconds."""
    prog, model = state.progress, state.model
    apply_freeze(model, model.model_config.freeze, prog.epoch, model.model_config.two_stage_epochs)
    if prog.plan is None:
        prog.start_epoch(plan.draw(prog.epoch))
    tasks = prog.plan
    assert tasks is not None
    averaging_points = (
        mid_epoch_points(len(tasks), cfg.average_points_per_epoch)
        if prog.epoch in averaged_epoch_numbers(cfg.epochs, cfg.average_last_epochs) else [])
    started = time.perf_counter()
    log.start_epoch(prog.epoch, cfg.epochs, len(tasks), prog.pos)
    while prog.pos < len(tasks):
        chunk = tasks[prog.pos : prog.pos + cfg.grad_accum_steps]
        losses, rows = step(chunk)
        log.add(losses)
        prog.seen += rows
        before, prog.pos = prog.pos, prog.pos + len(chunk)
        prog.step += 1
        if any(before < point <= prog.pos for point in averaging_points):
            state.add_to_average(epoch_end=False)
        log.after_step(prog, len(chunk), state.scheduler.get_last_lr()[0])
        if cfg.checkpoint_every and prog.step % cfg.checkpoint_every == 0 and prog.pos < len(tasks):
            log.flush(prog)
            saves.save(state)
    log.end_epoch(prog)
    return time.perf_counter() - started


def end_epoch(state: TrainState, score: Callable[[], dict[str, Any]], plan: TaskPlan,
              log: TrainLog, cfg: TrainConfig, train_seconds: float = 0.0) -> bool:
    """Score the dev sets, record and log the epoch, keep the weights if it is the best so
    far, and move on; returns whether early stopping ends training here. ``train_seconds``
    (the steps' seconds so far in this process; a resumed run restarts the count) goes into
    the record, so the history is a dev curve against training time."""
    prog = state.progress
    record = {"epoch": prog.epoch, "step": prog.step, "train_seconds": round(train_seconds, 1),
              "dev": score(),
              "train_loss": {t: float(np.mean(v)) for t, v in prog.losses.items() if v},
              "sampler_p": plan.probabilities(prog.epoch)}
    log.epoch(record)
    if prog.epoch in averaged_epoch_numbers(cfg.epochs, cfg.average_last_epochs):
        state.add_to_average(separate_ends=cfg.average_points_per_epoch > 1)
    end = prog.close_epoch(record, cfg.early_stopping_patience, cfg.epochs)
    if end.improved:
        state.keep_best()
    if end.stopped:
        log.early_stop(cfg.early_stopping_patience)
    return end.stopped


def score_initial_model(state: TrainState, score: Callable[[], dict[str, Any]],
                        log: TrainLog) -> None:
    """The zero-shot reference (``train.epochs: 0``): no step; the initial model (heads
    fitted on frozen features, see model/head_init.py) is scored and kept as "epoch 0"."""
    dev = score()
    state.progress.record_initial(dev)
    state.keep_best()
    log.initial(dev)


def score_dev(model: MultitaskModel, sets: dict[str, TaskData], batch_size: int, pad_id: int,
              device: torch.device, in_overall: set[str], precision: Precision
              ) -> dict[str, Any]:
    """:func:`evaluate_sets`, then back to train mode for the next epoch."""
    dev = evaluate_sets(model, sets, batch_size, pad_id, device, in_overall, precision)
    model.train()
    return dev


def fit(model: MultitaskModel, train_sets: dict[str, TaskData], dev_sets: dict[str, TaskData],
        *, cfg: TrainConfig, sampler: str, seed: int, pad_id: int, in_overall: set[str],
        live: Any | None = None, eval_batch_size: int = 128, loss_cfg: LossConfig | None = None,
        checkpoint_dir: Path | None = None, fingerprint: str = "",
        dist_ctx: dist.DistContext = dist.SINGLE) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best dev epoch, or,
    with ``train.average_last_epochs``, the mean of the last epochs' weights (see
    :func:`finish`).

    ``sampler`` names the task sampler, ``pad_id`` the tokenizer's padding id, ``in_overall``
    the tasks whose dev scores make ``overall``. With ``checkpoint_dir`` and
    ``train.resume: auto``, a checkpoint of the same ``fingerprint`` is resumed.
    """
    device = dist.device_for(dist_ctx, select_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    prepare_model(model, cfg, device, seed)
    state, step, plan = build(model, train_sets, cfg=cfg, loss_cfg=loss_cfg or LossConfig(),
                              sampler=sampler, seed=seed, pad_id=pad_id, precision=precision,
                              device=device, dist_ctx=dist_ctx)
    result = FitResult(best_epoch=0, best_dev={}, precision=precision.name)
    if checkpoint_dir is not None and cfg.resume == "auto":
        found = state.resume(checkpoint_dir, fingerprint)
        result.resumed_from = str(found) if found is not None else None
    saves = Checkpoints(checkpoint_dir if dist_ctx.is_main else None, fingerprint)
    log = TrainLog(live, dist_ctx.is_main, cfg.log_every)
    score = functools.partial(score_dev, model, dev_sets, eval_batch_size, pad_id, device,
                              in_overall, precision)
    start = time.perf_counter()
    if cfg.epochs == 0 and state.progress.best is None:
        score_initial_model(state, score, log)
    while state.progress.epoch <= cfg.epochs:
        result.train_seconds += train_epoch(state, step, plan, log, cfg, saves)
        result.stopped_early |= end_epoch(state, score, plan, log, cfg, result.train_seconds)
        saves.save(state)
    return finish(state, result, start, score, log)


def finish(state: TrainState, result: FitResult, start: float,
           score: Callable[[], dict[str, Any]], log: TrainLog) -> FitResult:
    """Load the weights to keep into the model (the averaged epochs' mean when
    ``train.average_last_epochs`` averaged any, else the best epoch's; the mean is scored on
    dev) and fill in the result. With points inside the epochs, the epoch ends' own mean is
    scored first, so the summary holds the option's effect measured on one trajectory."""
    prog = state.progress
    assert prog.best is not None and state.best is not None

    def scored_mean(weights: dict[str, torch.Tensor], points: int) -> dict[str, Any]:
        state.model.load_state_dict(weights)
        scored = {"epochs": list(prog.averaged), "points": points, "dev": score()}
        log.average(scored["epochs"], points, scored["dev"])
        return scored

    if state.average is None:
        state.model.load_state_dict(state.best)
    else:
        ends = (None if state.epoch_end_average is None
                else scored_mean(state.epoch_end_average, len(prog.averaged)))
        result.average = scored_mean(state.average, prog.average_points)  # loaded last: kept
        if ends is not None:
            result.average["epoch_ends"] = ends
            result.epoch_end_mean = state.epoch_end_average
    result.best_epoch = prog.best_epoch
    result.best_dev = copy.deepcopy(prog.best)
    result.history = prog.history
    result.steps = prog.step
    result.seconds = time.perf_counter() - start
    return result
