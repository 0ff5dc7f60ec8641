"""Batches from tokenized Parquet: per-task arrays in memory, dynamic padding per batch.

Sequences are kept as one flat int32 array plus offsets per column (no Python lists of
tokens), and a batch is padded only to its own longest row. Training draws shuffled batches
from an endless per-task stream; evaluation walks length-sorted batches (less padding) and
puts predictions back in file order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

COLUMNS = {
    "single": ("input_ids",),
    "siamese": ("a_input_ids", "b_input_ids"),
    "cross": ("input_ids", "token_type_ids"),
}


@dataclass
class Ragged:
    """A column of variable-length int32 sequences: ``values[offsets[i]:offsets[i+1]]``."""

    values: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class TaskData:
    task: str
    ids: list[str]
    labels: np.ndarray  # float64, NaN where unlabelled (test)
    columns: dict[str, Ragged]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_labels(self) -> bool:
        return len(self.labels) > 0 and not np.isnan(self.labels).any()

    def lengths(self) -> np.ndarray:
        """Per-row cost proxy: the longest of this row's sequences."""
        return np.maximum.reduce([c.lengths for c in self.columns.values()])


def load_task_data(path: Path, task: str, encoding: str) -> TaskData:
    """Load the columns one encoding needs: ``single``, ``siamese`` (a and b) or ``cross``."""
    cols = COLUMNS[encoding]
    return task_data_from_table(pq.read_table(path, columns=["id", "label", *cols]), task,
                                encoding)


def task_data_from_table(table: pa.Table, task: str, encoding: str) -> TaskData:
    """In-memory tokenized table (``tokenize_table`` output) -> TaskData; ``predict`` uses this
    so user input goes through exactly the path the evaluate stage's files go through."""
    cols = COLUMNS[encoding]
    ragged = {}
    for c in cols:
        arr = table.column(c).combine_chunks()
        ragged[c] = Ragged(arr.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False),
                           arr.offsets.to_numpy().astype(np.int64))
    labels = table.column("label").to_numpy(zero_copy_only=False).astype(np.float64)
    return TaskData(task, table.column("id").to_pylist(), labels, ragged)


def collate(data: TaskData, idx: np.ndarray, pad_id: int,
            regression: bool) -> dict[str, torch.Tensor]:
    """Pad the rows ``idx`` of every column to the batch's longest; masks from lengths."""
    batch: dict[str, torch.Tensor] = {}
    for name, col in data.columns.items():
        starts, ends = col.offsets[idx], col.offsets[idx + 1]
        lens = ends - starts
        width = int(lens.max()) if len(idx) else 0
        fill = 0 if name == "token_type_ids" else pad_id
        ids = np.full((len(idx), width), fill, dtype=np.int64)
        for row, (s, e) in enumerate(zip(starts, ends, strict=True)):
            ids[row, : e - s] = col.values[s:e]
        batch[name] = torch.from_numpy(ids)
        if name.endswith("input_ids"):
            mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int64)
            batch[f"{name[: -len('input_ids')]}attention_mask"] = torch.from_numpy(mask)
    labels = data.labels[idx]
    if not np.isnan(labels).any():
        batch["labels"] = (torch.from_numpy(labels.astype(np.float32)) if regression
                           else torch.from_numpy(labels.astype(np.int64)))
    return batch


class BatchStream:
    """Endless shuffled batches of one task; a new permutation on every pass.

    With ``world_size`` > 1 (data-parallel training) every rank draws the same permutation
    (same seed) and takes its own slice ``rank::world_size`` of each global batch of
    ``batch_size * world_size`` rows, so the ranks see disjoint shards. Each pass is padded by
    repeating its first rows to a multiple of ``world_size`` (as torch's DistributedSampler
    does) so no rank ever gets an empty batch.
    """

    def __init__(self, size: int, batch_size: int, rng: np.random.Generator,
                 rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size, self.rng = size, batch_size, rng
        self.rank, self.world_size = rank, world_size
        self._order = np.empty(0, dtype=np.int64)
        self._pos = 0

    def __next__(self) -> np.ndarray:
        if self._pos >= len(self._order):
            self._order = self.rng.permutation(self.size)
            if self.world_size > 1 and len(self._order) % self.world_size:
                pad = self.world_size - len(self._order) % self.world_size
                self._order = np.concatenate([self._order, np.resize(self._order, pad)])
            self._pos = 0
        step = self.batch_size * self.world_size
        idx = self._order[self._pos : self._pos + step]
        self._pos += step
        return idx[self.rank :: self.world_size] if self.world_size > 1 else idx

    def state_dict(self) -> dict[str, object]:
        return {"order": self._order.tolist(), "pos": self._pos}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self._order = np.asarray(state["order"], dtype=np.int64)
        self._pos = int(state["pos"])  # type: ignore[arg-type]


def num_batches(size: int, batch_size: int) -> int:
    return -(-size // batch_size)


def eval_batches(data: TaskData, batch_size: int) -> Iterator[np.ndarray]:
    """Index batches in order of length (stable), so each batch pads little."""
    order = np.argsort(data.lengths(), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
