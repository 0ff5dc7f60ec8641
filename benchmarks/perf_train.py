"""Training and evaluation throughput: the pipeline's loop vs a naive loop vs the compute limit.

Three ways to run the same training budget (same model and initial weights, same tasks in the
same round-robin order, same batch size and number of batches per task):

- ``fast``: the pipeline's own :func:`pipeline.train.loop.fit` on the tokenized Parquet
  (length-bucketed batches, dynamic padding, distinct siamese sentences once, fused AdamW,
  gradient clipping and the lr schedule as in a real run; dev scoring excluded), under
  ``train.precision`` (``auto``: bf16 autocast on a CPU with AMX-BF16); ``perf`` also runs it
  in fp32 so the data path's share of the gain shows on its own.
- ``naive``: a loop in the style of the CS224N starter code: a DataLoader of raw sentences
  with random batches, the tokenizer called inside ``collate_fn`` with ``padding=True``
  (pad to the batch's longest), fp32, the per-parameter (``foreach=False``) AdamW and a
  ``loss.item()`` every step.
- ``limit``: forward + backward + AdamW step of the same model on tensors built beforehand
  from the fast loop's own batches holding only their real tokens (each sequence column
  reshaped to rows of one length, so nothing is padded), no data loading at all, in the same
  precision as ``fast``.

Padding efficiency (real tokens / computed tokens) is counted at the encoder's input by a
forward pre-hook, so it sees exactly what each loop feeds the transformer.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from pipeline.config import Params
from pipeline.data.batching import BatchStream, Ragged, TaskData, pad_rows
from pipeline.inference import predict
from pipeline.model.multitask import MultitaskModel
from pipeline.precision import Precision
from pipeline.train.loop import fit, make_optimizer, output_loss
from pipeline.train.samplers import SAMPLERS, SamplerContext

CPU = torch.device("cpu")


@dataclass
class Run:
    """One timed loop: what it processed and how long it took."""

    seconds: float
    examples: int
    real_tokens: int  # non-pad tokens of the examples (both sentences of a pair)
    computed_tokens: int  # tokens the encoder computed (padding included)
    encoder_real: int  # non-pad tokens the encoder computed (distinct sentences once)
    cpu_seconds: float = 0.0  # CPU time of this process over the same span (all threads)

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.real_tokens / self.seconds

    @property
    def padding_efficiency(self) -> float:
        return self.encoder_real / max(self.computed_tokens, 1)


class TokenCounter:
    """Counts the tokens the encoder is asked to compute (a forward pre-hook on it)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        self.computed = 0
        self._sums: list[torch.Tensor] = []  # summed at the end: no device sync per call
        self._handle = encoder.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _module: torch.nn.Module, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is not None:
            self.computed += mask.numel()
            self._sums.append(mask.sum())

    @property
    def real(self) -> int:
        return int(sum(int(s) for s in self._sums))

    def reset(self) -> None:
        self.computed = 0
        self._sums = []

    def close(self) -> None:
        self._handle.remove()


def plan(params: Params, sizes: dict[str, int], steps: int, seed: int) -> list[str]:
    """The task of each step, drawn by the configured sampler exactly as ``fit`` draws it."""
    batches = {t: -(-n // params.train.batch_size) for t, n in sizes.items()}
    sampler = SAMPLERS[params.sampler]()
    ctx = SamplerContext(sizes, batches, 1, 1, params.train.sampler_temperature,
                         params.train.sampler_cap)
    return sampler.schedule(ctx, steps, np.random.default_rng(seed))


def fast_batches(params: Params, sets: dict[str, TaskData], tasks: list[str],
                 seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """The (task, row indices) of each step of ``fit`` (same streams, same seeds)."""
    streams = {t: BatchStream(len(d), params.train.batch_size_of(t),
                              np.random.default_rng([seed, i]),
                              lengths=d.bucket_keys() if params.train.length_bucketing else None)
               for i, (t, d) in enumerate(sets.items())}
    for t in tasks:
        yield t, next(streams[t])


def example_tokens(data: TaskData, idx: np.ndarray) -> int:
    return int(sum(c.lengths[idx].sum() for n, c in data.columns.items()
                   if n.endswith("input_ids")))


def run_fast(model: MultitaskModel, params: Params, sets: dict[str, TaskData], steps: int,
             seed: int, pad_id: int, counter: TokenCounter) -> Run:
    cfg = params.train.model_copy(update={"epochs": 1, "batches_per_epoch": steps,
                                          "resume": "never", "checkpoint_every": None})
    counter.reset()
    cpu = time.process_time()
    res = fit(model, sets, {}, cfg=cfg, sampler=params.sampler, seed=seed, pad_id=pad_id,
              in_overall=set(), loss_cfg=params.loss)
    tasks = plan(params, {t: len(d) for t, d in sets.items()}, steps, seed)
    examples = tokens = 0
    for t, idx in fast_batches(params, sets, tasks, seed):
        examples += len(idx)
        tokens += example_tokens(sets[t], idx)
    cpu = time.process_time() - cpu  # includes fit's setup, a small share of the run
    return Run(res.train_seconds, examples, tokens, counter.computed, counter.real, cpu)


# -- naive loop -------------------------------------------------------------------------
def take(data: TaskData, idx: np.ndarray) -> TaskData:
    """The rows ``idx`` of ``data`` as a TaskData of their own (real tokens only)."""
    cols = {}
    for name, col in data.columns.items():
        ids, lens = pad_rows(col, idx, 0)
        real = np.arange(ids.shape[1])[None, :] < lens[:, None]
        cols[name] = Ragged(ids[real].astype(np.int32),
                            np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
    return TaskData(data.task, [data.ids[i] for i in idx], data.labels[idx], cols)


def every_kth(n: int, fraction: float, at_least: int = 0) -> np.ndarray:
    """An evenly spread ``fraction`` of ``n`` rows, but at least ``at_least`` (or all)."""
    k = min(max(round(n * fraction), at_least), n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64)) if k else np.arange(0)


class RawRows(torch.utils.data.Dataset):
    """Untokenized rows of one task (what the starter code's datasets hold)."""

    def __init__(self, path: Path, rows: np.ndarray | None = None) -> None:
        t = pq.read_table(path, columns=["text_a", "text_b", "label"])
        if rows is not None:
            t = t.take(rows)
        self.a = t.column("text_a").to_pylist()
        self.b = t.column("text_b").to_pylist()
        self.labels = t.column("label").to_pylist()

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[str, str | None, float]:
        return self.a[i], self.b[i], self.labels[i]


def naive_collate(tok: PreTrainedTokenizerBase, max_length: int, pair: bool,
                  regression: bool) -> Callable[[list[Any]], dict[str, torch.Tensor]]:
    """Tokenize inside collate, padded to the batch's longest (the starter code's pad_data)."""

    def fn(rows: list[Any]) -> dict[str, torch.Tensor]:
        a, b, y = zip(*rows, strict=True)
        batch: dict[str, torch.Tensor] = {}
        for prefix, texts in ((("a_", a), ("b_", b)) if pair else (("", a),)):
            enc = tok(list(texts), return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)
            batch[f"{prefix}input_ids"] = enc["input_ids"]
            batch[f"{prefix}attention_mask"] = enc["attention_mask"]
        batch["labels"] = torch.tensor(y, dtype=torch.float32 if regression else torch.long)
        return batch

    return fn


def naive_loaders(prepared: Path, model: MultitaskModel, tok: PreTrainedTokenizerBase,
                  max_length: int, batch_size: int, split: str, shuffle: bool,
                  seed: int, rows: dict[str, np.ndarray] | None = None
                  ) -> dict[str, DataLoader]:
    out = {}
    for t, spec in model.tasks.items():
        ds = RawRows(prepared / t / f"{split}.parquet", (rows or {}).get(t))
        out[t] = DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                            collate_fn=naive_collate(tok, max_length, spec.pair,
                                                     spec.type == "regression"),
                            generator=torch.Generator().manual_seed(seed))
    return out


def endless(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        yield from loader


def run_naive(model: MultitaskModel, loaders: dict[str, DataLoader], tasks: list[str],
              counter: TokenCounter, device: torch.device = CPU) -> Run:
    """Starter-code style: per-parameter AdamW, fp32, a ``loss.item()`` per step."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
    its = {t: endless(dl) for t, dl in loaders.items()}
    counter.reset()
    examples = tokens = 0
    train_loss = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    for t in tasks:
        batch = {k: v.to(device) for k, v in next(its[t]).items()}
        opt.zero_grad()
        out = model(t, batch)
        loss = output_loss(model.tasks[t], out, batch["labels"])
        loss.backward()
        opt.step()
        train_loss += loss.item()
        examples += len(batch["labels"])
        tokens += int(sum(v.sum() for k, v in batch.items() if k.endswith("attention_mask")))
    seconds = time.perf_counter() - start
    return Run(seconds, examples, tokens, counter.computed, counter.real,
               time.process_time() - cpu)


# -- raw-compute limit ------------------------------------------------------------------
def dense_batch(data: TaskData, idx: np.ndarray, regression: bool) -> dict[str, torch.Tensor]:
    """The rows ``idx`` with only their real tokens: each sequence column's tokens laid out
    as ``len(idx)`` rows of one length (total // rows), so there is no padding at all."""
    batch: dict[str, torch.Tensor] = {}
    for name, col in data.columns.items():
        if not name.endswith("input_ids"):
            continue
        tokens = np.concatenate([col.values[col.offsets[i] : col.offsets[i + 1]] for i in idx])
        width = max(len(tokens) // len(idx), 1)
        ids = torch.from_numpy(np.resize(tokens, len(idx) * width).astype(np.int64))
        prefix = name[: -len("input_ids")]
        batch[name] = ids.view(len(idx), width)
        batch[f"{prefix}attention_mask"] = torch.ones(len(idx), width, dtype=torch.long)
    labels = data.labels[idx]
    batch["labels"] = (torch.from_numpy(labels.astype(np.float32)) if regression
                       else torch.from_numpy(labels.astype(np.int64)))
    return batch


def limit_batches(params: Params, model: MultitaskModel, sets: dict[str, TaskData],
                  steps: int, seed: int) -> list[tuple[str, dict[str, torch.Tensor], int]]:
    tasks = plan(params, {t: len(d) for t, d in sets.items()}, steps, seed)
    return [(t, dense_batch(sets[t], idx, model.tasks[t].type == "regression"),
             example_tokens(sets[t], idx))
            for t, idx in fast_batches(params, sets, tasks, seed)]


def run_limit(model: MultitaskModel, params: Params,
              batches: list[tuple[str, dict[str, torch.Tensor], int]],
              counter: TokenCounter, device: torch.device = CPU) -> Run:
    """Forward + backward + (fused) AdamW step per pre-built batch (already on ``device``,
    under ``train.precision``'s autocast); nothing else."""
    from pipeline.precision import resolve_precision
    from pipeline.train.combine import build_combiner

    model.train()
    precision = resolve_precision(params.train.precision, device)
    batches = [(t, {k: v.to(device) for k, v in b.items()}, n) for t, b, n in batches]
    if device.type == "cuda":
        torch.cuda.synchronize()
    combiner = build_combiner("sampled", {t: s.type for t, s in model.tasks.items()}, {})
    opt = make_optimizer(model, combiner, params.train)
    counter.reset()
    examples = tokens = 0
    start, cpu = time.perf_counter(), time.process_time()
    for t, batch, n_tokens in batches:
        opt.zero_grad(set_to_none=True)
        with precision.autocast(device):
            loss = output_loss(model.tasks[t], model(t, batch),
                               batch["labels"])
        loss.backward()
        opt.step()
        examples += len(batch["labels"])
        tokens += n_tokens
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return Run(seconds, examples, tokens, counter.computed, counter.real,
               time.process_time() - cpu)


# -- evaluation ---------------------------------------------------------------------------
def run_eval_fast(model: MultitaskModel, sets: dict[str, TaskData], batch_size: int,
                  pad_id: int, precision: Precision, device: torch.device = CPU) -> Run:
    """The pipeline's ``predict`` (as evaluate runs it: the training's precision)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for data in sets.values():
        predict(model, data, batch_size, pad_id, device, precision)
        n += len(data)
    return Run(time.perf_counter() - start, n, 0, 0, 0, time.process_time() - cpu)


def run_eval_naive(model: MultitaskModel, loaders: dict[str, DataLoader],
                   device: torch.device = CPU) -> Run:
    """Starter-code style evaluation: ``no_grad``, file order, tokenize in collate."""
    model.eval()
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    with torch.no_grad():
        for t, dl in loaders.items():
            for batch in dl:
                out = model(t, {k: v.to(device) for k, v in batch.items() if k != "labels"})
                if model.tasks[t].type == "regression":
                    out.cpu().numpy()
                else:
                    F.softmax(out, dim=-1).argmax(-1).cpu().numpy()
                n += len(batch["labels"])
    model.train()
    return Run(time.perf_counter() - start, n, 0, 0, 0, time.process_time() - cpu)


def fresh(model: MultitaskModel, state: dict[str, torch.Tensor]) -> MultitaskModel:
    """The model reset to the shared initial weights (every loop starts from the same)."""
    model.load_state_dict(state)
    model.zero_grad(set_to_none=True)
    return model


def snapshot(model: MultitaskModel) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())
