"""Tokenize prepared tables into Parquet with int32 list columns, chunk by chunk.

For each row: ``input_ids``/``attention_mask`` of the single sentence or of the joint pair
``[CLS] a [SEP] b [SEP]`` (with ``token_type_ids``), and for pair tasks the two sentences on
their own (``a_*``, ``b_*``) for siamese encoding. No padding is stored: batches pad to their
own longest row. Chunks go through the fast tokenizer in one batched call each and are written
as Parquet row groups, so memory stays flat as the input grows. Output is byte-identical for
identical inputs and params, so DVC does not rerun downstream stages needlessly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import PreTrainedTokenizerBase

from pipeline.config import SPLITS, TaskConfig, TokenizeConfig
from pipeline.io import atomic_path, write_json


def _list_column(seqs: list[list[int]]) -> pa.ListArray:
    return pa.array(seqs, type=pa.list_(pa.int32()))


def _ones_like(col: pa.ListArray) -> pa.Array:
    flat = np.ones(len(col.values), dtype=np.int32)
    return pa.ListArray.from_arrays(col.offsets, pa.array(flat))


def _lengths(col: pa.ListArray) -> pa.Array:
    off = col.offsets.to_numpy()
    return pa.array((off[1:] - off[:-1]).astype(np.int32))


def tokenize_table(table: pa.Table, cfg: TaskConfig, tok: PreTrainedTokenizerBase,
                   max_length: int) -> pa.Table:
    """Tokenize one chunk of a prepared table."""
    a = table.column("text_a").to_pylist()
    cols: dict[str, pa.Array] = {"id": table.column("id").combine_chunks(),
                                 "label": table.column("label").combine_chunks()}
    if cfg.pair:
        b = table.column("text_b").to_pylist()
        joint = tok(a, b, truncation="longest_first", max_length=max_length,
                    return_token_type_ids=True, return_attention_mask=False)
        ids = _list_column(joint["input_ids"])
        cols.update(input_ids=ids, attention_mask=_ones_like(ids),
                    token_type_ids=_list_column(joint["token_type_ids"]), length=_lengths(ids))
        for side, texts in (("a", a), ("b", b)):
            enc = tok(texts, truncation=True, max_length=max_length,
                      return_token_type_ids=False, return_attention_mask=False)
            side_ids = _list_column(enc["input_ids"])
            cols[f"{side}_input_ids"] = side_ids
            cols[f"{side}_attention_mask"] = _ones_like(side_ids)
            cols[f"{side}_length"] = _lengths(side_ids)
    else:
        enc = tok(a, truncation=True, max_length=max_length, return_token_type_ids=False,
                  return_attention_mask=False)
        ids = _list_column(enc["input_ids"])
        cols.update(input_ids=ids, attention_mask=_ones_like(ids), length=_lengths(ids))
    return pa.table(cols)


def tokenize_file(src: Path, dst: Path, cfg: TaskConfig, tok: PreTrainedTokenizerBase,
                  params: TokenizeConfig) -> int:
    """Tokenize ``src`` (prepared Parquet) into ``dst`` chunk by chunk; return rows written."""
    reader = pq.ParquetFile(src)
    n = 0
    writer: pq.ParquetWriter | None = None
    with atomic_path(dst) as tmp:
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
                 tok: PreTrainedTokenizerBase, params: TokenizeConfig,
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
