"""The performance benchmark's pieces measure what they claim (no timing assertions).

The full ``python -m benchmarks.perf --quick`` takes minutes on 2 cores, so the pieces are
tested instead: the limit's batches hold exactly the real tokens with no padding, the token
counter sees what the encoder computes, the naive tokenize path produces the stage's tokens,
and the results render with every acceptance line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from benchmarks import perf, perf_tokenize
from benchmarks import perf_train as pt
from pipeline.config import EncoderConfig, TaskConfig, TokenizeConfig
from pipeline.data.batching import collate
from pipeline.model.encoder import load_tokenizer
from tests.unit.microtrain import micro_data, micro_model


def test_limit_batches_hold_only_real_tokens():
    data = micro_data()["pair"]
    idx = np.arange(10)
    batch = pt.dense_batch(data, idx, regression=False)
    for side in ("a_", "b_"):
        real = int(data.columns[f"{side}input_ids"].lengths[idx].sum())
        ids = batch[f"{side}input_ids"]
        assert ids.shape[0] == 10 and real - 10 < ids.numel() <= real
        assert bool(batch[f"{side}attention_mask"].all())


def test_take_keeps_the_rows_tokens():
    data = micro_data()["pair"]
    idx = pt.every_kth(len(data), 0.25)
    assert len(pt.every_kth(len(data), 0.01, at_least=5)) == 5
    assert len(pt.every_kth(10, 0.5, at_least=100)) == 10
    sub = pt.take(data, idx)
    assert len(sub) == len(idx) and sub.ids == [data.ids[i] for i in idx]
    for name, col in data.columns.items():
        for k, i in enumerate(idx):
            got = sub.columns[name].values[sub.columns[name].offsets[k]:
                                           sub.columns[name].offsets[k + 1]]
            assert got.tolist() == col.values[col.offsets[i]: col.offsets[i + 1]].tolist()


def test_token_counter_sees_padding_and_distinct_sentences():
    model = micro_model(dropout=0.0).eval()
    data = micro_data()["pair"]
    batch = collate(data, np.arange(8), 0, regression=False)
    counter = pt.TokenCounter(model.encoder)
    with torch.no_grad():
        model("pair", batch)
    masks = [v for k, v in batch.items() if k.startswith("u") and k.endswith("attention_mask")]
    assert counter.computed == sum(m.numel() for m in masks)
    assert counter.real == sum(int(m.sum()) for m in masks)
    counter.close()


def test_naive_tokenize_path_produces_the_stages_tokens(tmp_path: Path):
    tok = load_tokenizer(EncoderConfig(name="tiny-random"))
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"],
                             "text_a": ["a fine film", "dull", "what is love?"],
                             "text_b": ["a good movie", "boring and long", "what's love"],
                             "label": [1.0, 0.0, 1.0]}), src)
    cfg = TaskConfig(type="classification", num_labels=2, pair=True)
    perf_tokenize.run_stage(src, tmp_path / "stage.parquet", cfg, tok, TokenizeConfig())
    perf_tokenize.run_naive(src, tmp_path / "naive.parquet", cfg, tok, 128)
    stage = pq.read_table(tmp_path / "stage.parquet")
    naive = pq.read_table(tmp_path / "naive.parquet")
    for col in ("input_ids", "a_input_ids", "b_input_ids"):
        assert stage.column(col).to_pylist() == [list(x) for x in naive.column(col).to_pylist()]


def test_results_render_every_acceptance_line():
    r = {
        "date": "2026-01-01 00:00 UTC", "commit": "abc", "machine": "m", "torch": "2",
        "torch_threads": 2, "command": "python -m benchmarks.perf",
        "train_vs_naive": 1.6, "train_vs_limit": 0.9, "padding_efficiency": 0.95,
        "padding_efficiency_naive": 0.6, "padding_efficiency_limit": 1.0,
        "train_steps": 4, "train_batch_size": 32, "sampler": "round_robin", "tasks": ["sst"],
        "max_length": 128, "train_repeats": 1, "train_examples_per_s": 10,
        "train_naive_examples_per_s": 6, "train_limit_examples_per_s": 11,
        "train_tokens_per_s": 300, "train_naive_tokens_per_s": 200,
        "train_limit_tokens_per_s": 330, "train_computed_tokens_naive_over_fast": 1.6,
        "eval_examples": 100, "eval_fraction": 0.125, "eval_min_rows": 10,
        "eval_examples_per_task": {"sst": 100}, "eval_batch_size": 128, "eval_examples_per_s": 50,
        "eval_naive_examples_per_s": 20, "eval_vs_naive": 2.5, "train_peak_rss_mb": 900,
        "tokenize_vs_naive": 3.0, "tokenize_vs_limit": 0.9, "tokenize_peak_mem_ratio_10x": 1.0,
        "tokenize_rows": 10, "tokenize_rows_per_s": 100, "tokenize_naive_rows_per_s": 30,
        "tokenize_limit_rows_per_s": 110, "tokenize_rss_task": "para",
        "tokenize_peak_rss_mb_1x": 600, "tokenize_peak_rss_mb_10x": 600,
        "tokenize_rss_rows_1x": 10, "tokenize_rss_rows_10x": 100, "tokenize_rss_before_mb": 400,
        "tokenize_rss_growth_mb_1x": 50, "tokenize_rss_growth_mb_10x": 60,
        "noop_repro_s": 1.0, "noop_repro_runs_s": [1.0], "first_repro_s": 50,
        "first_repro_stages_s": {"train": 30}, "sampler_rerun_s": 40,
        "sampler_rerun_stages_s": {"train": 30, "evaluate": 8, "export": 2},
        "sampler_rerun_skipped": ["prepare", "tokenize", "mlm"], "sampler_dvc": "anneal",
        "synthetic_train_size": 40, "epochs": 1, "train_precision_param": "auto",
        "train_precision": "bf16", "train_fp32_examples_per_s": 9, "train_fp32_vs_naive": 1.5,
        "eval_fp32_examples_per_s": 30, "eval_fp32_vs_naive": 1.5, "tokenize_threads": 2,
    }
    verdicts = perf.verdicts(r)
    assert [v[0][0] for v in verdicts] == ["1", "2", "3", "4", "5", "6"]
    assert [v[2] for v in verdicts] == [True, True, False, True, True, True]
    text = perf.markdown(r)
    assert "| NO |" in text and "perf-gpu, written where a GPU ran it" in text
    assert "Why a target is not met" in text and "Tokenize vs naive" in text
    assert "- Training" not in text  # only missed lines are explained
    assert "`train.precision: auto` = bf16" in text and "in fp32 30 ex/s, 1.5x naive" in text


def test_render_rewrites_the_section_from_recorded_figures(tmp_path: Path):
    figures = {"date": "2026-02-03 04:05 UTC", "commit": "fresh42", "machine": "test-box",
               "torch": "9.9", "torch_threads": 3, "command": "python -m benchmarks.perf --quick"}
    (tmp_path / "r.json").write_text(json.dumps(figures))
    out = tmp_path / "results.md"
    other = "<!-- section: mlm -->\nMLM figures, untouched\n<!-- /section: mlm -->\n"
    out.write_text("# Benchmark results\n\n<!-- section: perf -->\n- date: 2025-01-01; commit "
                   "stale01\n- machine: old-box\n<!-- /section: perf -->\n\n" + other)
    assert perf.main(["--render", "--json", str(tmp_path / "r.json"), "--out", str(out)]) \
        == figures
    text = out.read_text()
    section = text.split("<!-- section: perf -->\n", 1)[1].split("<!-- /section: perf -->")[0]
    for recorded in ("2026-02-03 04:05 UTC", "commit fresh42", "test-box", "torch 9.9",
                     "3 threads", "`python -m benchmarks.perf --quick`"):
        assert recorded in section, recorded
    assert "stale01" not in text and "old-box" not in text  # the old figures are gone
    assert text.count("<!-- section: perf -->") == 1 and text.endswith(other)
    assert text.startswith("# Benchmark results\n\n<!-- section: perf -->\n## Performance")
