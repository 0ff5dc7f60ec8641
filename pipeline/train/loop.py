"""The multitask training loop: one task's batch per step, chosen by the sampler.

Each epoch the sampler lays out which task every step trains on; the step draws the next
shuffled batch of that task, computes its loss (cross-entropy or MSE), and takes an AdamW step
under a linear warmup/decay schedule. After each epoch the dev sets are scored and the best
``overall`` model is kept (best-checkpoint selection).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from pipeline.config import TrainConfig
from pipeline.data.batching import BatchStream, TaskData, collate, num_batches
from pipeline.evaluate import overall_scores, task_metrics
from pipeline.inference import predict
from pipeline.model.multitask import MultitaskModel
from pipeline.train.samplers import SAMPLERS, SamplerContext


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from pipeline.errors import UserError

        raise UserError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def task_loss(model: MultitaskModel, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    out = model(task, batch)
    if model.tasks[task].type == "regression":
        return F.mse_loss(out.float(), batch["labels"])
    return F.cross_entropy(out.float(), batch["labels"])


def evaluate_sets(model: MultitaskModel, sets: dict[str, TaskData], batch_size: int,
                  pad_id: int, device: torch.device,
                  in_overall: set[str]) -> dict[str, Any]:
    """Dev metrics of every labelled set plus ``overall``/``overall_mean``."""
    per_task: dict[str, dict[str, float]] = {}
    for task, data in sets.items():
        if len(data) == 0 or not data.has_labels:
            continue
        p = predict(model, data, batch_size, pad_id, device)
        per_task[task] = task_metrics(model.tasks[task], data.labels, p.pred, p.scores)
    return {**per_task, **overall_scores(model.tasks, per_task, in_overall)}


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class FitResult:
    best_epoch: int
    best_dev: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def fit(model: MultitaskModel, train_sets: dict[str, TaskData], dev_sets: dict[str, TaskData],
        cfg: TrainConfig, sampler_name: str, seed: int, pad_id: int, in_overall: set[str],
        live: Any | None = None, eval_batch_size: int = 128) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best dev epoch."""
    device = select_device(cfg.device)
    model.to(device).train()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    streams = {t: BatchStream(len(d), cfg.batch_size, np.random.default_rng([seed, i]))
               for i, (t, d) in enumerate(train_sets.items()) if len(d) > 0}
    sampler = SAMPLERS[sampler_name]()
    sizes = {t: len(train_sets[t]) for t in streams}
    batches = {t: num_batches(n, cfg.batch_size) for t, n in sizes.items()}

    def context(epoch: int) -> SamplerContext:
        return SamplerContext(sizes, batches, epoch, cfg.epochs, cfg.sampler_temperature,
                              cfg.sampler_cap)

    steps_per_epoch = cfg.batches_per_epoch or sampler.natural_steps(context(1))
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(cfg.warmup_ratio * total), total)
    regression = {t: model.tasks[t].type == "regression" for t in streams}

    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    result = FitResult(best_epoch=0, best_dev={})
    start = time.perf_counter()
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        ctx = context(epoch)
        plan = sampler.schedule(ctx, steps_per_epoch, rng)
        losses: dict[str, list[float]] = {t: [] for t in streams}
        seen = 0
        bar = tqdm(plan, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False,
                   mininterval=2.0)
        pending: list[tuple[str, torch.Tensor]] = []
        for task in bar:
            idx = next(streams[task])
            batch = {k: v.to(device, non_blocking=True)
                     for k, v in collate(train_sets[task], idx, pad_id, regression[task]).items()}
            loss = task_loss(model, task, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            step += 1
            seen += len(idx)
            pending.append((task, loss.detach()))
            if step % cfg.log_every == 0:  # one host sync per logging interval, not per step
                for t, value in pending:
                    losses[t].append(float(value))
                pending.clear()
                rate = seen / max(bar.format_dict["elapsed"], 1e-9)
                bar.set_postfix(ex_s=f"{rate:.0f}", refresh=False)
                if live is not None:
                    recent = {t: float(np.mean(v[-cfg.log_every:])) for t, v in losses.items() if v}
                    for t, v in recent.items():
                        live.log_metric(f"train/loss/{t}", v)
                    live.log_metric("train/lr", sched.get_last_lr()[0])
                    live.next_step()
        for t, value in pending:
            losses[t].append(float(value))
        dev = evaluate_sets(model, dev_sets, eval_batch_size, pad_id, device, in_overall)
        probs = sampler.probabilities(ctx)
        record = {"epoch": epoch, "step": step, "dev": dev,
                  "train_loss": {t: float(np.mean(v)) for t, v in losses.items() if v},
                  "sampler_p": probs}
        result.history.append(record)
        tqdm.write(f"epoch {epoch}: dev overall {dev['overall']:.4f} "
                   + " ".join(f"{t}={v:.3f}" for t, v in record["train_loss"].items()))
        if live is not None:
            for t, m in dev.items():
                if isinstance(m, dict):
                    for k, v in m.items():
                        live.log_metric(f"dev/{t}/{k}", v)
            live.log_metric("dev/overall", dev["overall"])
            for t, p in probs.items():
                live.log_metric(f"sampler/p/{t}", p)
            live.log_metric("epoch", epoch)
            live.next_step()
        if best is None or dev["overall"] > best["overall"]:
            best, result.best_epoch = dev, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    assert best is not None and best_state is not None
    model.load_state_dict(best_state)
    result.best_dev = copy.deepcopy(best)
    result.steps = step
    result.seconds = time.perf_counter() - start
    return result
