"""Tokenize prepared tables into Parquet with int32 list columns, chunk by chunk.

For each row: ``input_ids``/``attention_mask`` of the single sentence or of the joint pair
``[CLS] a [SEP] b [SEP]`` (with ``token_type_ids``), and for pair tasks the two sentences on
their own (``a_*``, ``b_*``) for siamese encoding. No padding is stored: batches pad to their
own longest row. Chunks go through the fast tokenizer in one batched call each and are written
as Parquet row groups, so memory stays flat as the input grows. Output is byte-identical for
identical inputs and params, so DVC does not rerun downstream stages needlessly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from pipeline.config import SPLITS, TaskConfig, TokenizeConfig
from pipeline.io import atomic_path, write_json

PARALLELISM_ENV = "TOKENIZERS_PARALLELISM"


@dataclass(frozen=True)
class StageTokenizer:
    """A fast tokenizer's Rust backend and what ``tokenize`` writes into ``meta.json``; loaded
    by :mod:`pipeline.model.stage_tokenizer` (without transformers for the built-ins)."""

    backend: Tokenizer
    pad_token_id: int
    vocab_size: int  # without added tokens, as transformers' ``vocab_size``
    truncation_side: str = "right"


@contextmanager
def rust_parallelism(enabled: bool) -> Iterator[None]:
    """Let the Rust tokenizer spread each batched call over every core (or not) meanwhile.

    The stages default ``TOKENIZERS_PARALLELISM`` to false: a process that forks after the
    Rust thread pool ran gets a warning and a serial tokenizer. The tokenize stage forks
    nothing, so it turns the pool on around its own calls (``tokenize.parallel``); the
    library reads the variable at every batched call, so setting it here takes effect."""
    old = os.environ.get(PARALLELISM_ENV)
    os.environ[PARALLELISM_ENV] = "true" if enabled else "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PARALLELISM_ENV, None)
        else:
            os.environ[PARALLELISM_ENV] = old


def encode_batch(tok: StageTokenizer, a: Sequence[str], b: Sequence[str] | None,
                 max_length: int, type_ids: bool = False
                 ) -> tuple[list[list[int]], list[list[int]] | None]:
    """Token ids (and token type ids) of ``a`` or of the pairs (``a``, ``b``), truncated to
    ``max_length`` (longest first), special tokens added, no padding.

    Runs the Rust tokenizer's ``encode_batch_fast`` (no character offsets, which the pipeline
    never uses; about 15% faster than the transformers call, which computes them) with the
    truncation the transformers call would set, and puts the backend's truncation and
    padding back afterwards. Equal to ``tok(a, b, truncation=True, max_length=...)`` of the
    transformers tokenizer (pinned by tests/unit/test_tokenize_fast.py on the real data)."""
    backend = tok.backend
    truncation: dict[str, Any] | None = backend.truncation
    padding: dict[str, Any] | None = backend.padding
    backend.enable_truncation(max_length, stride=0, strategy="longest_first",
                              direction=tok.truncation_side)
    backend.no_padding()
    try:
        inputs = list(zip(a, b, strict=True)) if b is not None else list(a)
        encs = backend.encode_batch_fast(inputs, add_special_tokens=True)
    finally:
        if truncation is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)
    return [e.ids for e in encs], ([e.type_ids for e in encs] if type_ids else None)


def _list_column(seqs: list[list[int]]) -> pa.ListArray:
    return pa.array(seqs, type=pa.list_(pa.int32()))


def _ones_like(col: pa.ListArray) -> pa.Array:
    flat = np.ones(len(col.values), dtype=np.int32)
    return pa.ListArray.from_arrays(col.offsets, pa.array(flat))


def _lengths(col: pa.ListArray) -> pa.Array:
    off = col.offsets.to_numpy()
    return pa.array((off[1:] - off[:-1]).astype(np.int32))


def tokenize_table(table: pa.Table, cfg: TaskConfig, tok: StageTokenizer,
                   max_length: int) -> pa.Table:
    """Tokenize one chunk of a prepared table."""
    a = table.column("text_a").to_pylist()
    cols: dict[str, pa.Array] = {"id": table.column("id").combine_chunks(),
                                 "label": table.column("label").combine_chunks()}
    if cfg.pair:
        b = table.column("text_b").to_pylist()
        joint_ids, joint_types = encode_batch(tok, a, b, max_length, type_ids=True)
        assert joint_types is not None
        ids = _list_column(joint_ids)
        cols.update(input_ids=ids, attention_mask=_ones_like(ids),
                    token_type_ids=_list_column(joint_types), length=_lengths(ids))
        for side, texts in (("a", a), ("b", b)):
            side_ids = _list_column(encode_batch(tok, texts, None, max_length)[0])
            cols[f"{side}_input_ids"] = side_ids
            cols[f"{side}_attention_mask"] = _ones_like(side_ids)
            cols[f"{side}_length"] = _lengths(side_ids)
    else:
        ids = _list_column(encode_batch(tok, a, None, max_length)[0])
        cols.update(input_ids=ids, attention_mask=_ones_like(ids), length=_lengths(ids))
    return pa.table(cols)


def tokenize_file(src: Path, dst: Path, cfg: TaskConfig, tok: StageTokenizer,
                  params: TokenizeConfig) -> int:
    """Tokenize ``src`` (prepared Parquet) into ``dst`` chunk by chunk; return rows written."""
    reader = pq.ParquetFile(src)
    n = 0
    writer: pq.ParquetWriter | None = None
    with rust_parallelism(params.parallel), atomic_path(dst) as tmp:
        for batch in reader.iter_batches(batch_size=params.batch_size,
                                         columns=["id", "text_a", "text_b", "label"]):
            out = tokenize_table(pa.Table.from_batches([batch]), cfg, tok, params.max_length)
            if writer is None:
                writer = pq.ParquetWriter(tmp, out.schema, compression="zstd")
            writer.write_table(out)
            n += out.num_rows
        if writer is None:  # empty split: still write a readable file with the schema
            empty = tokenize_table(reader.read(columns=["id", "text_a", "text_b", "label"]),
                                   cfg, tok, params.max_length)
            pq.write_table(empty, tmp, compression="zstd")
        else:
            writer.close()
    return n


def tokenize_all(prepared: Path, out_dir: Path, tasks: dict[str, TaskConfig],
                 tok: StageTokenizer, params: TokenizeConfig,
                 encoder_name: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    with atomic_path(out_dir) as staged:
        staged.mkdir(parents=True)
        for task, cfg in tasks.items():
            counts[task] = {}
            for split in SPLITS:
                src = prepared / task / f"{split}.parquet"
                if src.is_file():
                    counts[task][split] = tokenize_file(src, staged / task / f"{split}.parquet",
                                                        cfg, tok, params)
        write_json(staged / "meta.json", {
            "encoder": encoder_name, "max_length": params.max_length,
            "pad_token_id": tok.pad_token_id, "vocab_size": tok.vocab_size, "rows": counts,
        })
    return counts
