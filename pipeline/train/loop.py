"""The multitask training loop.

Each epoch the sampler lays out which task every step trains on. A step draws the next shuffled
batch of that task (or, for the all-task loss combinations, one batch of every task; see
``combine.py``), computes the losses (cross-entropy or MSE, plus SMART's terms when enabled),
lets the combiner turn them into gradients, and every ``grad_accum_steps`` steps takes an AdamW
step under the chosen schedule, with gradients averaged across data-parallel ranks. After each
epoch the dev sets are scored, the best ``overall`` model is kept, and training stops early
after ``early_stopping_patience`` epochs without improvement. Checkpoints (every
``checkpoint_every`` optimizer steps and at epoch ends) make a killed run resumable to the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pipeline.config import LossConfig, TrainConfig
from pipeline.data.batching import BatchStream, TaskData, collate, num_batches
from pipeline.device import select_device
from pipeline.evaluate import overall_scores, task_metrics
from pipeline.inference import predict
from pipeline.model.freeze import apply_freeze, param_groups
from pipeline.model.multitask import MultitaskModel
from pipeline.precision import PRECISIONS, Precision, resolve_precision
from pipeline.train import checkpoint as ckpt
from pipeline.train import distributed as dist
from pipeline.train.combine import BackwardContext, build_combiner, split_parameters
from pipeline.train.determinism import configure_determinism
from pipeline.train.samplers import SAMPLERS, SamplerContext
from pipeline.train.schedules import ScheduleContext, build_scheduler
from pipeline.train.smart import Smart


def output_loss(regression: bool, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if regression:
        return F.mse_loss(out.float(), labels)
    return F.cross_entropy(out.float(), labels)


def task_loss(model: MultitaskModel, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return output_loss(model.tasks[task].type == "regression", model(task, batch),
                       batch["labels"])


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
    groups = param_groups(model, cfg.lr, cfg.head_lr, cfg.weight_decay)
    if list(combiner.parameters()):
        groups.append({"params": list(combiner.parameters()), "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=cfg.lr, **adamw_kernel(model))


def adamw_kernel(model: torch.nn.Module) -> dict[str, bool]:
    """The fastest AdamW implementation for where the weights live: the fused kernel (one
    kernel for every tensor) on CPU/CUDA, else the multi-tensor ``foreach`` one; the default
    per-tensor Python loop costs a noticeable share of a CPU step."""
    device = next(model.parameters()).device.type
    return {"fused": True} if device in ("cpu", "cuda") else {"foreach": True}


def log_dev(live: Any, dev: dict[str, Any], probs: dict[str, float], epoch: int) -> None:
    """One DVCLive step with the dev metrics of ``epoch`` and the sampler's probabilities."""
    for t, m in dev.items():
        if isinstance(m, dict):
            for k, v in m.items():
                live.log_metric(f"dev/{t}/{k}", v)
    live.log_metric("dev/overall", dev["overall"])
    for t, p in probs.items():
        live.log_metric(f"sampler/p/{t}", p)
    live.log_metric("epoch", epoch)
    live.next_step()


@dataclass
class FitResult:
    best_epoch: int
    best_dev: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0  # training steps only (dev scoring left out)
    stopped_early: bool = False
    resumed_from: str | None = None
    precision: str = "fp32"  # what train.precision resolved to on this device


@dataclass
class _Progress:
    """Where the run is: everything besides weights/optimizer a checkpoint must restore."""

    epoch: int = 1
    step: int = 0  # optimizer steps so far
    plan: list[str] | None = None  # this epoch's task per batch-step (None: not drawn yet)
    pos: int = 0  # batch-steps of the plan done
    seen: int = 0
    losses: dict[str, list[float]] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fit(model: MultitaskModel, train_sets: dict[str, TaskData], dev_sets: dict[str, TaskData],
        cfg: TrainConfig, sampler_name: str, seed: int, pad_id: int, in_overall: set[str],
        live: Any | None = None, eval_batch_size: int = 128, loss_cfg: LossConfig | None = None,
        checkpoint_dir: Path | None = None, fingerprint: str = "",
        dist_ctx: dist.DistContext = dist.SINGLE) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best dev epoch."""
    loss_cfg = loss_cfg or LossConfig()
    device = dist.device_for(dist_ctx, select_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    configure_determinism(device, cfg.deterministic)  # bitwise-reproducible runs and resumes
    model.to(device).train()
    if cfg.compile:
        # In place, so parameter names (checkpoints, saved weights) are unchanged.
        model.encoder.compile(dynamic=True)
    torch.manual_seed(seed)
    random.seed(seed)
    rng = np.random.default_rng(seed)
    aux_rng = np.random.default_rng([seed, 1_000_003])  # pcgrad's task order
    world = dist_ctx.world_size
    streams = {t: BatchStream(len(d), cfg.batch_size_of(t), np.random.default_rng([seed, i]),
                              dist_ctx.rank, world,
                              lengths=d.bucket_keys() if cfg.length_bucketing else None)
               for i, (t, d) in enumerate(train_sets.items()) if len(d) > 0}
    generators = {"sampler": rng, "aux": aux_rng,
                  **{f"stream/{t}": s.rng for t, s in streams.items()}}
    sampler = SAMPLERS[sampler_name]()
    sizes = {t: len(train_sets[t]) for t in streams}
    batches = {t: num_batches(n, cfg.batch_size_of(t) * world) for t, n in sizes.items()}

    def context(epoch: int) -> SamplerContext:
        return SamplerContext(sizes, batches, epoch, cfg.epochs, cfg.sampler_temperature,
                              cfg.sampler_cap)

    regression = {t: model.tasks[t].type == "regression" for t in streams}
    combiner = build_combiner(loss_cfg.combine, {t: model.tasks[t].type for t in streams},
                              loss_cfg.weights).to(device)
    smart = Smart(loss_cfg.smart, model) if loss_cfg.smart.enabled else None
    steps_per_epoch = cfg.batches_per_epoch or sampler.natural_steps(context(1))
    opt_per_epoch = math.ceil(steps_per_epoch / cfg.grad_accum_steps)
    total = opt_per_epoch * cfg.epochs
    opt = make_optimizer(model, combiner, cfg)
    sched = build_scheduler(cfg.schedule, opt, ScheduleContext(
        total, opt_per_epoch, math.ceil(cfg.warmup_ratio * total), cfg.lr_decay))
    scaler = precision.scaler(device)
    shared, task_only = split_parameters(model, combiner)
    trained_params = list(model.parameters()) + list(combiner.parameters())
    dist.broadcast_parameters(model, dist_ctx)

    prog = _Progress()
    best_state: dict[str, torch.Tensor] | None = None
    result = FitResult(best_epoch=0, best_dev={}, precision=precision.name)
    if checkpoint_dir is not None and cfg.resume == "auto":
        found = ckpt.latest(checkpoint_dir, fingerprint)
        if found is not None:
            weights, state = ckpt.load(found)
            model.load_state_dict(weights["model"])
            best_state = weights.get("best")
            if smart is not None and smart.teacher is not None:
                smart.teacher.load_state_dict(weights["teacher"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            combiner.load_state_dict(state["combiner"])
            if scaler is not None:
                scaler.load_state_dict(state["scaler"])
            for t, s in streams.items():
                s.load_state_dict(state["streams"][t])
            prog = _Progress(**state["progress"])
            ckpt.set_rng_state(state["rng"], generators)
            result.resumed_from = str(found)

    def save_checkpoint() -> None:
        if checkpoint_dir is None or not dist_ctx.is_main:
            return
        weights = {"model": model.state_dict()}
        if best_state is not None:
            weights["best"] = best_state
        if smart is not None and smart.teacher is not None:
            weights["teacher"] = smart.teacher.state_dict()
        ckpt.save(checkpoint_dir, prog.step, weights, {
            "fingerprint": fingerprint,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "combiner": combiner.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "streams": {t: s.state_dict() for t, s in streams.items()},
            "progress": prog.as_dict(), "rng": ckpt.rng_state(generators)})

    start = time.perf_counter()
    pending: list[tuple[str, torch.Tensor]] = []
    if cfg.epochs == 0 and prog.best is None:
        # The zero-shot reference: no step; the initial model (heads fitted on frozen
        # features, see model/head_init.py) is scored and kept as "epoch 0".
        dev = evaluate_sets(model, dev_sets, eval_batch_size, pad_id, device, in_overall,
                            precision)
        model.train()
        prog.history.append({"epoch": 0, "step": 0, "dev": dev, "train_loss": {},
                             "sampler_p": {}})
        prog.best, prog.best_epoch = dev, 0
        best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if dist_ctx.is_main:
            tqdm.write(f"epoch 0 (no training): dev overall {dev['overall']:.4f}")
        if live is not None:
            log_dev(live, dev, {}, 0)

    def flush() -> None:
        for t, value in pending:
            prog.losses.setdefault(t, []).append(float(value))
        pending.clear()

    while prog.epoch <= cfg.epochs:
        epoch = prog.epoch
        ctx = context(epoch)
        apply_freeze(model, model.model_config.freeze, epoch, model.model_config.two_stage_epochs)
        if prog.plan is None:
            prog.plan = sampler.schedule(ctx, steps_per_epoch, rng)
            prog.pos, prog.seen, prog.losses = 0, 0, {}
        plan = prog.plan
        epoch_start = time.perf_counter()
        bar = tqdm(total=len(plan), initial=prog.pos, desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="step", leave=False, mininterval=2.0, disable=not dist_ctx.is_main)
        while prog.pos < len(plan):
            chunk = plan[prog.pos : prog.pos + cfg.grad_accum_steps]
            opt.zero_grad(set_to_none=True)
            back = BackwardContext(shared, task_only, 1 / len(chunk), scaler, aux_rng)
            for sampled in chunk:
                step_losses: dict[str, torch.Tensor] = {}
                for task in combiner.step_tasks(sampled):
                    idx = next(streams[task])
                    batch = {k: v.to(device, non_blocking=True) for k, v in
                             collate(train_sets[task], idx, pad_id, regression[task]).items()}
                    with precision.autocast(device):
                        out = model(task, batch)
                        loss = output_loss(regression[task], out, batch["labels"])
                        if smart is not None:
                            loss = loss + smart.penalty(model, task, batch, out)
                    step_losses[task] = loss
                    prog.seen += len(idx)
                # A parameter-free head on a frozen encoder without adapters has nothing to
                # train in this stage: its loss is logged, its backward skipped.
                trainable = {t: v for t, v in step_losses.items() if v.requires_grad}
                if trainable:
                    combiner.backward(trainable, back)
                pending.extend((t, v.detach()) for t, v in step_losses.items())
            dist.average_gradients(trained_params, dist_ctx)
            if scaler is not None:
                scaler.unscale_(opt)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(trained_params, cfg.max_grad_norm)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            sched.step()
            if smart is not None:
                smart.update_teacher(model)
            prog.pos += len(chunk)
            prog.step += 1
            bar.update(len(chunk))
            if prog.step % cfg.log_every == 0:  # one host sync per logging interval
                flush()
                rate = prog.seen / max(bar.format_dict["elapsed"], 1e-9)
                bar.set_postfix(ex_s=f"{rate:.0f}", refresh=False)
                if live is not None:
                    for t, v in prog.losses.items():
                        live.log_metric(f"train/loss/{t}", float(np.mean(v[-cfg.log_every:])))
                    live.log_metric("train/lr", sched.get_last_lr()[0])
                    live.next_step()
            if (cfg.checkpoint_every and prog.step % cfg.checkpoint_every == 0
                    and prog.pos < len(plan)):
                flush()
                save_checkpoint()
        bar.close()
        flush()
        result.train_seconds += time.perf_counter() - epoch_start
        dev = evaluate_sets(model, dev_sets, eval_batch_size, pad_id, device, in_overall,
                            precision)
        model.train()
        probs = sampler.probabilities(ctx)
        record = {"epoch": epoch, "step": prog.step, "dev": dev,
                  # steps' seconds so far in this process (a resumed run restarts the count)
                  "train_seconds": round(result.train_seconds, 1),
                  "train_loss": {t: float(np.mean(v)) for t, v in prog.losses.items() if v},
                  "sampler_p": probs}
        prog.history.append(record)
        if dist_ctx.is_main:
            tqdm.write(f"epoch {epoch}: dev overall {dev['overall']:.4f} "
                       + " ".join(f"{t}={v:.3f}" for t, v in record["train_loss"].items()))
        if live is not None:
            log_dev(live, dev, probs, epoch)
        if prog.best is None or dev["overall"] > prog.best["overall"]:
            prog.best, prog.best_epoch, prog.bad_epochs = dev, epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            prog.bad_epochs += 1
        prog.epoch, prog.plan, prog.pos = epoch + 1, None, 0
        patience = cfg.early_stopping_patience
        if patience is not None and prog.bad_epochs >= patience and prog.epoch <= cfg.epochs:
            result.stopped_early = True
            if dist_ctx.is_main:
                tqdm.write(f"early stop: no better dev overall for {patience} epoch(s)")
            prog.epoch = cfg.epochs + 1
        save_checkpoint()
    assert prog.best is not None and best_state is not None
    model.load_state_dict(best_state)
    result.best_epoch = prog.best_epoch
    result.best_dev = copy.deepcopy(prog.best)
    result.history = prog.history
    result.steps = prog.step
    result.seconds = time.perf_counter() - start
    return result
