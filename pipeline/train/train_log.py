"""Everything the training loop reports, in one place: the progress bar, the train losses
every ``train.log_every`` optimizer steps, one line and one DVCLive step per scored epoch, the
early-stop note and the averaged weights' scores. Only the main rank prints; ``live`` is None
where DVCLive is off.

Step losses stay on the device as detached tensors until a logging interval (or a checkpoint,
or the epoch's end) turns them into floats: one host sync per interval instead of one per
step, which on a GPU would stall the queue of kernels every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.train.state import Progress


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


class TrainLog:
    """The loop's reporter (see the module docstring)."""

    def __init__(self, live: Any | None, is_main: bool, log_every: int) -> None:
        self.live = live
        self.is_main = is_main
        self.log_every = log_every
        self.pending: list[tuple[str, torch.Tensor]] = []  # step losses not yet synced
        self.bar: Any = None

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch}/{epochs}", unit="step",
                        leave=False, mininterval=2.0, disable=not self.is_main)

    def add(self, losses: list[tuple[str, torch.Tensor]]) -> None:
        """Keep one step's task losses (detached) until the next :meth:`flush`."""
        self.pending.extend(losses)

    def flush(self, progress: Progress) -> None:
        """Move the pending losses into ``progress`` as floats (the one host sync)."""
        progress.add_losses([(t, float(v)) for t, v in self.pending])
        self.pending.clear()

    def after_step(self, progress: Progress, batch_steps: int, lr: float) -> None:
        """Advance the bar; every ``log_every`` optimizer steps log the recent losses and lr."""
        self.bar.update(batch_steps)
        if progress.step % self.log_every != 0:
            return
        self.flush(progress)
        rate = progress.seen / max(self.bar.format_dict["elapsed"], 1e-9)
        self.bar.set_postfix(ex_s=f"{rate:.0f}", refresh=False)
        if self.live is not None:
            for t, v in progress.losses.items():
                self.live.log_metric(f"train/loss/{t}", float(np.mean(v[-self.log_every:])))
            self.live.log_metric("train/lr", lr)
            self.live.next_step()

    def end_epoch(self, progress: Progress) -> None:
        self.bar.close()
        self.flush(progress)

    def initial(self, dev: dict[str, Any]) -> None:
        """The untrained model's scores (``train.epochs: 0``), logged as epoch 0."""
        self.write(f"epoch 0 (no training): dev overall {dev['overall']:.4f}")
        if self.live is not None:
            log_dev(self.live, dev, {}, 0)

    def epoch(self, record: dict[str, Any]) -> None:
        """A scored epoch: its line (dev overall and mean train loss per task) and metrics."""
        self.write(f"epoch {record['epoch']}: dev overall {record['dev']['overall']:.4f} "
                   + " ".join(f"{t}={v:.3f}" for t, v in record["train_loss"].items()))
        if self.live is not None:
            log_dev(self.live, record["dev"], record["sampler_p"], record["epoch"])

    def average(self, epochs: list[int], points: int, dev: dict[str, Any]) -> None:
        """The scores of the mean of the weights at ``points`` points of ``epochs``
        (``train.average_last_epochs``, ``train.average_points_per_epoch``)."""
        self.write(f"mean of the weights at {points} points of epochs "
                   f"{', '.join(map(str, epochs))}: dev overall {dev['overall']:.4f}")

    def early_stop(self, patience: int | None) -> None:
        self.write(f"early stop: no better dev overall for {patience} epoch(s)")

    def write(self, line: str) -> None:
        if self.is_main:
            tqdm.write(line)
