"""The training state: everything a checkpoint must restore, as one object that writes itself
to a checkpoint (:meth:`TrainState.save`) and reads itself back (:meth:`TrainState.restore`).

Save and restore walk the same table of parts (:meth:`TrainState._stateful`), so a part added
to one cannot be forgotten by the other: a resumed run must continue bit for bit where the
killed one stopped (tests/unit/test_resume.py), which needs every weight, optimizer moment,
schedule position, batch stream, RNG and the epoch's task plan back exactly as they were.

:class:`Progress` is the bookkeeping part (epoch, step, plan position, best dev, patience
counter, history); it is plain data so it fits ``state.pt`` under ``weights_only=True``, and
its epoch-end rule (:meth:`Progress.close_epoch`) is pure, so it is tested without a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.batching import BatchStream
from pipeline.train import checkpoint as ckpt
from pipeline.train.averaging import add_to_mean


@dataclass(frozen=True)
class EpochEnd:
    """What :meth:`Progress.close_epoch` decided: a new best epoch; training stops early."""

    improved: bool
    stopped: bool


@dataclass
class Progress:
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
    averaged: list[int] = field(default_factory=list)  # epochs in TrainState.average
    average_points: int = 0  # weight points in TrainState.average (mid-epoch ones included)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def start_epoch(self, plan: list[str]) -> None:
        """Begin an epoch on a freshly drawn task plan (not called when resuming mid-epoch)."""
        self.plan, self.pos, self.seen, self.losses = plan, 0, 0, {}

    def add_losses(self, losses: list[tuple[str, float]]) -> None:
        for task, value in losses:
            self.losses.setdefault(task, []).append(value)

    def record_initial(self, dev: dict[str, Any]) -> None:
        """The untrained model scored as "epoch 0" (``train.epochs: 0``): it is the best."""
        self.history.append({"epoch": 0, "step": 0, "dev": dev, "train_loss": {},
                             "sampler_p": {}})
        self.best, self.best_epoch = dev, 0

    def close_epoch(self, record: dict[str, Any], patience: int | None,
                    epochs: int) -> EpochEnd:
        """Record the scored epoch ``record`` and move to the next one.

        The epoch is the new best when its dev ``overall`` beats the best so far (strictly:
        a tie keeps the earlier epoch); otherwise the patience counter grows. Training stops
        early once ``patience`` epochs in a row brought no improvement, unless this was the
        last epoch anyway (then it simply ends)."""
        self.history.append(record)
        dev = record["dev"]
        improved = self.best is None or dev["overall"] > self.best["overall"]
        if improved:
            self.best, self.best_epoch, self.bad_epochs = dev, record["epoch"], 0
        else:
            self.bad_epochs += 1
        self.epoch, self.plan, self.pos = record["epoch"] + 1, None, 0
        stopped = patience is not None and self.bad_epochs >= patience and self.epoch <= epochs
        if stopped:
            self.epoch = epochs + 1
        return EpochEnd(improved, stopped)


def cpu_copy(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}


@dataclass
class TrainState:
    """The run's mutable state. Every part is restored in place, so anything built around
    these objects (the step, the batch source) keeps working after :meth:`restore`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    combiner: torch.nn.Module
    scaler: torch.amp.GradScaler | None
    streams: dict[str, BatchStream]
    generators: dict[str, np.random.Generator]  # every numpy RNG the run draws from
    teacher: torch.nn.Module | None = None  # SMART's EMA teacher
    progress: Progress = field(default_factory=Progress)
    best: dict[str, torch.Tensor] | None = None  # weights of the best epoch so far, on CPU
    # the running mean of the weights at the progress.average_points points of the epochs in
    # progress.averaged, on CPU (train.average_last_epochs; pipeline/train/averaging.py)
    average: dict[str, torch.Tensor] | None = None
    # with points inside the epochs (train.average_points_per_epoch > 1), the running mean of
    # the epoch ends alone (len(progress.averaged) points) beside it: what the run would have
    # kept without the option, on the same trajectory, so the summary compares the two paired
    epoch_end_average: dict[str, torch.Tensor] | None = None

    def keep_best(self) -> None:
        """Copy the current weights as the best so far (CPU, so they survive later steps)."""
        self.best = cpu_copy(self.model.state_dict())

    def add_to_average(self, epoch_end: bool = True, separate_ends: bool = False) -> None:
        """Add the current weights to the running mean: this epoch's end, or with
        ``epoch_end`` False a point inside it (``train.average_points_per_epoch``). With
        ``separate_ends``, an epoch end also joins :attr:`epoch_end_average`."""
        weights = self.model.state_dict()
        prog = self.progress
        self.average = (cpu_copy(weights) if self.average is None
                        else add_to_mean(self.average, weights, prog.average_points))
        prog.average_points += 1
        if not epoch_end:
            return
        if separate_ends:
            self.epoch_end_average = (
                cpu_copy(weights) if self.epoch_end_average is None
                else add_to_mean(self.epoch_end_average, weights, len(prog.averaged)))
        prog.averaged.append(prog.epoch)

    def _stateful(self) -> dict[str, Any]:
        """The parts with ``state_dict``/``load_state_dict`` kept in ``state.pt``, by key."""
        parts: dict[str, Any] = {"optimizer": self.optimizer, "scheduler": self.scheduler,
                                 "combiner": self.combiner}
        if self.scaler is not None:
            parts["scaler"] = self.scaler
        return parts

    def _weights(self) -> dict[str, torch.nn.Module]:
        """The modules kept as safetensors files, by file name (``best`` and the means are
        added apart)."""
        parts = {"model": self.model}
        if self.teacher is not None:
            parts["teacher"] = self.teacher
        return parts

    def save(self, ckpt_dir: Path, fingerprint: str) -> Path:
        """Write the state as checkpoint ``step-<optimizer steps>`` under ``ckpt_dir``."""
        weights = {name: m.state_dict() for name, m in self._weights().items()}
        if self.best is not None:
            weights["best"] = self.best
        if self.average is not None:
            weights["average"] = self.average
        if self.epoch_end_average is not None:
            weights["epoch_end_average"] = self.epoch_end_average
        state = {"fingerprint": fingerprint, "scaler": {},
                 **{name: part.state_dict() for name, part in self._stateful().items()},
                 "streams": {t: s.state_dict() for t, s in self.streams.items()},
                 "progress": self.progress.as_dict(), "rng": ckpt.rng_state(self.generators)}
        return ckpt.save(ckpt_dir, self.progress.step, weights, state)

    def restore(self, path: Path) -> None:
        """Load checkpoint ``path`` (written by :meth:`save`) into this state, in place."""
        weights, state = ckpt.load(path)
        for name, module in self._weights().items():
            module.load_state_dict(weights[name])
        self.best = weights.get("best")
        self.average = weights.get("average")
        self.epoch_end_average = weights.get("epoch_end_average")
        for name, part in self._stateful().items():
            part.load_state_dict(state[name])
        for t, s in self.streams.items():
            s.load_state_dict(state["streams"][t])
        self.progress = Progress(**state["progress"])
        ckpt.set_rng_state(state["rng"], self.generators)

    def resume(self, ckpt_dir: Path, fingerprint: str) -> Path | None:
        """Restore the newest checkpoint of this run (same fingerprint); None if there is
        none, and the state is left as it was."""
        found = ckpt.latest(ckpt_dir, fingerprint)
        if found is not None:
            self.restore(found)
        return found
