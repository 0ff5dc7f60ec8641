"""Tokenize stage throughput vs a naive per-row path and vs one batched call; peak memory.

- ``stage``: :func:`pipeline.data.tokenize.tokenize_file` on the prepared Parquet (read in
  chunks, one batched fast-tokenizer call per chunk and encoding, int32 list columns, zstd
  Parquet row groups), exactly what ``python -m stages.tokenize`` does per file.
- ``naive``: pandas reads the file and calls the tokenizer once per row in ``DataFrame.apply``
  (for pairs: the joint pair and each sentence, as the stage does), then writes Parquet.
- ``limit``: one batched tokenizer call per encoding over all rows already in memory, no I/O
  and no conversion: the most the tokenizer itself can do.

Peak memory: ``python -m benchmarks.perf_tokenize SRC`` tokenizes one prepared file in a fresh
process and prints its peak RSS, so the 1x and 10x inputs are measured the same way.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import PreTrainedTokenizerBase

from pipeline.config import TaskConfig, TokenizeConfig


def run_stage(src: Path, dst: Path, cfg: TaskConfig, tok: PreTrainedTokenizerBase,
              params: TokenizeConfig) -> float:
    from pipeline.data.tokenize import tokenize_file
    from pipeline.model.stage_tokenizer import from_transformers

    start = time.perf_counter()
    tokenize_file(src, dst, cfg, from_transformers(tok), params)
    return time.perf_counter() - start


def run_naive(src: Path, dst: Path, cfg: TaskConfig, tok: PreTrainedTokenizerBase,
              max_length: int, parallel: bool = True) -> float:
    from pipeline.data.tokenize import rust_parallelism

    with rust_parallelism(parallel):  # as the stage runs (a per-row call has no batch)
        return _naive(src, dst, cfg, tok, max_length)


def _naive(src: Path, dst: Path, cfg: TaskConfig, tok: PreTrainedTokenizerBase,
           max_length: int) -> float:
    start = time.perf_counter()
    df = pd.read_parquet(src, columns=["id", "text_a", "text_b", "label"])
    out = pd.DataFrame({"id": df["id"], "label": df["label"]})
    if cfg.pair:
        out["input_ids"] = df.apply(lambda r: tok(r.text_a, r.text_b, truncation=True,
                                                  max_length=max_length)["input_ids"], axis=1)
        for side in ("a", "b"):
            out[f"{side}_input_ids"] = df[f"text_{side}"].apply(
                lambda s: tok(s, truncation=True, max_length=max_length)["input_ids"])
    else:
        out["input_ids"] = df.apply(lambda r: tok(r.text_a, truncation=True,
                                                  max_length=max_length)["input_ids"], axis=1)
    out.to_parquet(dst)
    return time.perf_counter() - start


def load_texts(src: Path) -> tuple[list[str], list[str] | None]:
    t = pq.read_table(src, columns=["text_a", "text_b"])
    b = t.column("text_b")
    return t.column("text_a").to_pylist(), (b.to_pylist() if b.null_count < len(b) else None)


def run_limit(texts: tuple[list[str], list[str] | None], cfg: TaskConfig,
              tok: PreTrainedTokenizerBase, max_length: int, parallel: bool = True) -> float:
    """One batched transformers call per encoding over rows already in memory, with the
    Rust thread pool as the stage has it (``tokenize.parallel``)."""
    from pipeline.data.tokenize import rust_parallelism

    a, b = texts
    with rust_parallelism(parallel):
        start = time.perf_counter()
        if cfg.pair and b is not None:
            tok(a, b, truncation="longest_first", max_length=max_length,
                return_token_type_ids=True, return_attention_mask=False)
            for side in (a, b):
                tok(side, truncation=True, max_length=max_length,
                    return_token_type_ids=False, return_attention_mask=False)
        else:
            tok(a, truncation=True, max_length=max_length, return_token_type_ids=False,
                return_attention_mask=False)
        return time.perf_counter() - start


def repeat_file(src: Path, dst: Path, times: int) -> int:
    """``src`` concatenated ``times`` times (ids suffixed so they stay unique), written as
    the prepare stage writes its outputs; returns the row count."""
    t = pq.read_table(src)
    parts = []
    for k in range(times):
        ids = pa.array([f"{i}-{k}" for i in t.column("id").to_pylist()])
        parts.append(t.set_column(t.schema.get_field_index("id"), "id", ids))
    big = pa.concat_tables(parts)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(big, dst, compression="zstd")
    return big.num_rows


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``), so the peak measured afterwards is the
    tokenization's own and not that of importing torch and transformers."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS since the last :func:`reset_peak_rss` (else since the process started)."""
    hwm = _status_mb("VmHWM")
    if hwm == hwm:  # not NaN
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


def main() -> None:
    """Tokenize one prepared file in this (fresh) process; print JSON with its peak RSS."""
    ap = argparse.ArgumentParser(description="peak RSS of the tokenize stage on one file")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--pair", action="store_true")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=2000)
    args = ap.parse_args()
    from pipeline.config import EncoderConfig
    from pipeline.model.encoder import load_tokenizer

    tok = load_tokenizer(EncoderConfig(name="minilm-l6"))
    cfg = (TaskConfig(type="classification", num_labels=2, pair=True) if args.pair
           else TaskConfig(type="classification", num_labels=5, pair=False))
    params = TokenizeConfig(max_length=args.max_length, batch_size=args.chunk)
    tok(["warm up the tokenizer"])  # its lazy allocations are not the input's
    before = current_rss_mb()
    reset = reset_peak_rss()
    secs = run_stage(Path(args.src), Path(args.dst), cfg, tok, params)
    print(json.dumps({"rows": pq.ParquetFile(args.src).metadata.num_rows, "seconds": secs,
                      "rss_before_mb": before, "peak_rss_mb": peak_rss_mb(),
                      "peak_reset": reset}))


if __name__ == "__main__":
    main()
