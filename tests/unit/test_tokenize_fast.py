"""The tokenize stage's direct Rust path equals the transformers call, and leaves no trace.

``encode_batch`` skips the transformers wrapper (offsets it never uses) and runs the Rust
tokenizer on every core; neither may change a single token id.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import EncoderConfig, TaskConfig, TokenizeConfig
from pipeline.data.tokenize import (
    PARALLELISM_ENV,
    encode_batch,
    rust_parallelism,
    tokenize_file,
)
from pipeline.model.encoder import load_tokenizer

EDGE_CASES = [
    "", " ", "a", "Hello, WORLD!!", "naïve café déjà vu", "日本語のテキスト", "emoji 🤖 here",
    "tab\tand\nnewline", "x " * 400, "supercalifragilisticexpialidocious " * 50,
]


def _reference(tok, a, b, max_length):
    args = (a, b) if b is not None else (a,)
    enc = tok(*args, truncation=True, max_length=max_length, return_token_type_ids=True,
              return_attention_mask=False)
    return enc["input_ids"], enc["token_type_ids"]


@pytest.mark.parametrize("encoder", ["minilm-l6", "tiny-random"])
@pytest.mark.parametrize("max_length", [8, 64, 128])
def test_equal_to_the_transformers_call_on_edge_cases(encoder, max_length):
    tok = load_tokenizer(EncoderConfig(name=encoder))
    a = EDGE_CASES
    b = list(reversed(EDGE_CASES))
    ids, _ = encode_batch(tok, a, None, max_length)
    assert ids == _reference(tok, a, None, max_length)[0]
    ids, types = encode_batch(tok, a, b, max_length, type_ids=True)
    assert (ids, types) == _reference(tok, a, b, max_length)
    assert max(len(x) for x in ids) == max_length  # the long rows were truncated


@pytest.fixture(scope="module")
def real_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The four CS224N tasks, every train row, prepared as the stage prepares them."""
    from pipeline.config import parse_params
    from pipeline.data.prepare import prepare
    from tests.conftest import real_data_dir, tiny_params_dict

    d = real_data_dir()
    if d is None:
        pytest.skip("real CS224N data not available (set MTB_CS224N_DIR)")
    params = parse_params(tiny_params_dict(encoder={"name": "minilm-l6"},
                                           data={"source": "cs224n", "dir": str(d)}))
    out = tmp_path_factory.mktemp("real") / "prepared"
    prepare(params, out)
    return out, params


def test_equal_to_the_transformers_call_on_the_real_data(real_prepared):
    """Every train sentence and pair of the four CS224N tasks, at the default max_length."""
    prepared, params = real_prepared
    tok = load_tokenizer(EncoderConfig(name="minilm-l6"))
    for task, cfg in params.tasks.items():
        t = pq.read_table(prepared / task / "train.parquet", columns=["text_a", "text_b"])
        a = t.column("text_a").to_pylist()
        b = t.column("text_b").to_pylist() if cfg.pair else None
        assert len(a) > 1000
        with rust_parallelism(True):
            got = encode_batch(tok, a, b, 128, type_ids=True)
        assert got == _reference(tok, a, b, 128), task


def test_backend_settings_and_environment_are_restored():
    tok = load_tokenizer(EncoderConfig(name="minilm-l6"))
    backend = tok.backend_tokenizer
    before = (backend.truncation, backend.padding)
    old = os.environ.get(PARALLELISM_ENV)
    with rust_parallelism(True):
        assert os.environ[PARALLELISM_ENV] == "true"
        encode_batch(tok, ["one sentence", "two"], ["and", "its pair"], 16, type_ids=True)
    assert (backend.truncation, backend.padding) == before
    assert os.environ.get(PARALLELISM_ENV) == old


def test_parallel_and_serial_stage_outputs_are_byte_identical(tmp_path: Path, real_prepared):
    prepared, _ = real_prepared
    tok = load_tokenizer(EncoderConfig(name="minilm-l6"))
    cfg = TaskConfig(type="classification", num_labels=2, pair=True)
    outs = []
    for parallel in (True, False):
        dst = tmp_path / f"para-{parallel}.parquet"
        tokenize_file(prepared / "para" / "train.parquet", dst, cfg, tok,
                      TokenizeConfig(max_length=128, batch_size=4000, parallel=parallel))
        outs.append(dst)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert pq.ParquetFile(outs[0]).metadata.num_rows > 10_000
