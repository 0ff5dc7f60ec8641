"""Batches from tokenized Parquet: per-task arrays in memory, dynamic padding per batch.

Sequences are kept as one flat int32 array plus offsets per column (no Python lists of
tokens), and a batch is padded only to its own longest row with one vectorised gather.
Training draws length-bucketed, shuffled batches from an endless per-task stream; evaluation
walks length-sorted batches (less padding) and puts predictions back in file order. A
siamese pair batch also carries its distinct sentences once each (``pair_units``).
"""

from __future__ import annotations

import re
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


UNIT_CHUNKS = 2  # length-sorted encoder calls per siamese pair batch, at least ...
UNIT_CHUNK_ROWS = 64  # ... and as many as keep each call to this many distinct sentences
_UNIT = re.compile(r"u(\d+)_(.+)")  # a unit chunk's column: u{k}_input_ids, u{k}_attention_mask


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

    def bucket_keys(self) -> np.ndarray:
        """Length-bucketing sort key: the longest sequence of the row, ties broken by the
        shortest (so the two sentences of a pair both land among similar lengths)."""
        lens = [c.lengths.astype(np.int64) for c in self.columns.values()]
        longest, shortest = np.maximum.reduce(lens), np.minimum.reduce(lens)
        return longest * (int(shortest.max(initial=0)) + 1) + shortest


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


def pad_rows(col: Ragged, idx: np.ndarray, fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of ``col`` padded with ``fill`` to their longest: (ids, lengths).

    One vectorised gather (no Python loop over rows or tokens): position ``j`` of row ``i``
    reads ``values[start_i + j]`` where ``j < len_i`` and ``fill`` elsewhere."""
    starts = col.offsets[idx]
    lens = col.offsets[idx + 1] - starts
    width = int(lens.max()) if len(idx) else 0
    cols = np.arange(width)
    real = cols[None, :] < lens[:, None]
    pos = np.where(real, starts[:, None] + cols[None, :], 0)
    ids = col.values[pos] if len(col.values) else np.zeros(pos.shape, dtype=np.int32)
    return np.where(real, ids, fill).astype(np.int64), lens


def collate(data: TaskData, idx: np.ndarray, pad_id: int,
            regression: bool) -> dict[str, torch.Tensor]:
    """Pad the rows ``idx`` of every column to the batch's longest; masks from lengths."""
    batch: dict[str, torch.Tensor] = {}
    for name, col in data.columns.items():
        fill = 0 if name == "token_type_ids" else pad_id
        ids, lens = pad_rows(col, idx, fill)
        batch[name] = torch.from_numpy(ids)
        if name.endswith("input_ids"):
            mask = (np.arange(ids.shape[1])[None, :] < lens[:, None]).astype(np.int64)
            batch[f"{name[: -len('input_ids')]}attention_mask"] = torch.from_numpy(mask)
    if "a_input_ids" in data.columns and "b_input_ids" in data.columns:
        batch.update(pair_units(data.columns["a_input_ids"], data.columns["b_input_ids"], idx,
                                pad_id))
    labels = data.labels[idx]
    if not np.isnan(labels).any():
        batch["labels"] = (torch.from_numpy(labels.astype(np.float32)) if regression
                           else torch.from_numpy(labels.astype(np.int64)))
    return batch

def pair_units(a: Ragged, b: Ragged, idx: np.ndarray, pad_id: int,
               chunks: int = UNIT_CHUNKS) -> dict[str, torch.Tensor]:
    """Each distinct sentence of a siamese pair batch once, in length-sorted chunks.

    The batch's ``a`` and ``b`` sentences are pooled and duplicates (same token ids: a question
    asked twice, a sentence paired with itself) dropped, so the encoder runs once per distinct
    sentence. The distinct sentences are sorted by length and cut into ``chunks`` parts, each
    padded only to its own longest, which pads less than padding ``a`` and ``b`` each to their
    longest. Keys: ``u{k}_input_ids``/``u{k}_attention_mask`` per chunk, and ``a_unit``/
    ``b_unit``: each row's position among the chunks' rows taken in order."""
    if not len(idx):
        return {}
    ids_a, lens_a = pad_rows(a, idx, pad_id)
    ids_b, lens_b = pad_rows(b, idx, pad_id)
    width = max(ids_a.shape[1], ids_b.shape[1])
    both = np.full((2 * len(idx), width), pad_id, dtype=np.int64)
    both[: len(idx), : ids_a.shape[1]] = ids_a
    both[len(idx) :, : ids_b.shape[1]] = ids_b
    lens = np.concatenate([lens_a, lens_b])
    _, first, inverse = np.unique(both, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = first[np.argsort(lens[first], kind="stable")]  # distinct rows, shortest first
    position = np.empty(len(first), dtype=np.int64)
    position[np.argsort(lens[first], kind="stable")] = np.arange(len(first))
    out: dict[str, torch.Tensor] = {}
    n_chunks = max(chunks, -(-len(order) // UNIT_CHUNK_ROWS))
    for k, part in enumerate(np.array_split(order, min(n_chunks, len(order)))):
        w = int(lens[part].max())
        out[f"u{k}_input_ids"] = torch.from_numpy(both[part, :w])
        out[f"u{k}_attention_mask"] = torch.from_numpy(
            (np.arange(w)[None, :] < lens[part][:, None]).astype(np.int64))
    out["a_unit"] = torch.from_numpy(position[inverse[: len(idx)]])
    out["b_unit"] = torch.from_numpy(position[inverse[len(idx) :]])
    return out


def stack_twice(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch followed by a copy of itself along the rows, for one pass that draws two
    dropout masks per row. A siamese batch of distinct sentences (``u{k}_*`` chunks with
    ``a_unit``/``b_unit`` positions; :func:`pair_units`) gets its chunks
    appended again as further chunks and the copy's positions moved past the first set, so
    the copy's sentences are encoded apart from the originals' (R-Drop, train/rdrop.py)."""
    chunks = sorted({int(m.group(1)) for k in batch if (m := _UNIT.fullmatch(k))})
    units = sum(batch[f"u{k}_input_ids"].shape[0] for k in chunks)
    out: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if m := _UNIT.fullmatch(key):
            out[key] = value
            out[f"u{int(m.group(1)) + len(chunks)}_{m.group(2)}"] = value
        elif key in ("a_unit", "b_unit"):
            out[key] = torch.cat([value, value + units])
        else:
            out[key] = torch.cat([value, value])
    return out


BUCKET_POOL = 50  # batches per length-sorted pool (the "megabatch" of length grouping)


def bucketed_order(lengths: np.ndarray, batch: int, rng: np.random.Generator,
                   pool: int = BUCKET_POOL) -> np.ndarray:
    """One pass over all rows in which every consecutive ``batch``-row slice is a length bucket.

    Shuffle the rows, cut them into pools of ``pool * batch`` rows, sort each pool by length
    and cut it into batches, then shuffle the order of the batches. Every row appears exactly
    once; a batch holds rows of similar length (little padding) yet which rows meet in a batch
    and the order of the batches stay random. The one short batch, if any, goes last so the
    pass can be read as fixed ``batch``-row slices (which is what resuming relies on)."""
    n = len(lengths)
    perm = rng.permutation(n)
    size = batch * pool
    order = np.concatenate([perm[s : s + size][np.argsort(lengths[perm[s : s + size]],
                                                          kind="stable")]
                            for s in range(0, n, size)]) if n else perm
    full = n // batch
    batches = order[: full * batch].reshape(full, batch)[rng.permutation(full)]
    return np.concatenate([batches.ravel(), order[full * batch :]])


class BatchStream:
    """Endless shuffled batches of one task; a new permutation on every pass.

    Given ``lengths`` (each row's token count) the permutation is length-bucketed
    (:func:`bucketed_order`), so a batch pads little; the sampler still picks which task each
    step trains on, so task proportions are untouched. With ``world_size`` > 1 (data-parallel
    training) every rank draws the same permutation (same seed) and takes its own slice
    ``rank::world_size`` of each global batch of ``batch_size * world_size`` rows, so the ranks
    see disjoint shards. Each pass is padded by repeating its first rows to a multiple of
    ``world_size`` (as torch's DistributedSampler does) so no rank ever gets an empty batch.
    """

    def __init__(self, size: int, batch_size: int, rng: np.random.Generator,
                 rank: int = 0, world_size: int = 1,
                 lengths: np.ndarray | None = None) -> None:
        self.size, self.batch_size, self.rng = size, batch_size, rng
        self.rank, self.world_size = rank, world_size
        self.lengths = lengths
        self._order = np.empty(0, dtype=np.int64)
        self._pos = 0

    def __next__(self) -> np.ndarray:
        step = self.batch_size * self.world_size
        if self._pos >= len(self._order):
            self._order = (self.rng.permutation(self.size) if self.lengths is None
                           else bucketed_order(self.lengths, step, self.rng))
            if self.world_size > 1 and len(self._order) % self.world_size:
                pad = self.world_size - len(self._order) % self.world_size
                self._order = np.concatenate([self._order, np.resize(self._order, pad)])
            self._pos = 0
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
    order = np.argsort(data.bucket_keys(), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
