"""The tokenize stage's direct Rust path equals the transformers call, and leaves no trace.

The stage loads the built-in encoders' tokenizers from their files without transformers
(``load_stage_tokenizer``), and ``encode_batch`` skips the transformers wrapper (offsets it
never uses) and runs the Rust tokenizer on every core; none of it may change a token id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
from pipeline.model.encoder_source import resolve_encoder
from pipeline.model.stage_tokenizer import from_files, from_transformers, load_stage_tokenizer

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
    tok = load_stage_tokenizer(EncoderConfig(name=encoder))
    ref = load_tokenizer(EncoderConfig(name=encoder))
    a = EDGE_CASES
    b = list(reversed(EDGE_CASES))
    ids, _ = encode_batch(tok, a, None, max_length)
    assert ids == _reference(ref, a, None, max_length)[0]
    ids, types = encode_batch(tok, a, b, max_length, type_ids=True)
    assert (ids, types) == _reference(ref, a, b, max_length)
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
    tok = load_stage_tokenizer(EncoderConfig(name="minilm-l6"))
    ref = load_tokenizer(EncoderConfig(name="minilm-l6"))
    for task, cfg in params.tasks.items():
        t = pq.read_table(prepared / task / "train.parquet", columns=["text_a", "text_b"])
        a = t.column("text_a").to_pylist()
        b = t.column("text_b").to_pylist() if cfg.pair else None
        assert len(a) > 1000
        with rust_parallelism(True):
            got = encode_batch(tok, a, b, 128, type_ids=True)
        assert got == _reference(ref, a, b, 128), task


def test_backend_settings_and_environment_are_restored():
    tok = from_transformers(load_tokenizer(EncoderConfig(name="minilm-l6")))
    backend = tok.backend
    before = (backend.truncation, backend.padding)
    old = os.environ.get(PARALLELISM_ENV)
    with rust_parallelism(True):
        assert os.environ[PARALLELISM_ENV] == "true"
        encode_batch(tok, ["one sentence", "two"], ["and", "its pair"], 16, type_ids=True)
    assert (backend.truncation, backend.padding) == before
    assert os.environ.get(PARALLELISM_ENV) == old


def test_parallel_and_serial_stage_outputs_are_byte_identical(tmp_path: Path, real_prepared):
    prepared, _ = real_prepared
    tok = load_stage_tokenizer(EncoderConfig(name="minilm-l6"))
    cfg = TaskConfig(type="classification", num_labels=2, pair=True)
    outs = []
    for parallel in (True, False):
        dst = tmp_path / f"para-{parallel}.parquet"
        tokenize_file(prepared / "para" / "train.parquet", dst, cfg, tok,
                      TokenizeConfig(max_length=128, batch_size=4000, parallel=parallel))
        outs.append(dst)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert pq.ParquetFile(outs[0]).metadata.num_rows > 10_000


@pytest.mark.parametrize("encoder", ["minilm-l6", "tiny-random"])
def test_built_ins_load_from_their_files_as_transformers_loads_them(encoder):
    cfg = EncoderConfig(name=encoder)
    direct, wrapped = load_stage_tokenizer(cfg), from_transformers(load_tokenizer(cfg))
    assert json.loads(direct.backend.to_str()) == json.loads(wrapped.backend.to_str())
    assert (direct.pad_token_id, direct.vocab_size, direct.truncation_side) == (
        wrapped.pad_token_id, wrapped.vocab_size, wrapped.truncation_side) == (0, 30522, "right")


def test_the_tokenize_stage_imports_neither_torch_nor_transformers():
    """The point of the direct path: the stage starts in about a second, not five."""
    code = ("import sys, stages.tokenize as s\n"
            "from pipeline.config import EncoderConfig\n"
            "s.load_stage_tokenizer(EncoderConfig(name='minilm-l6'))\n"
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"


def test_other_encoders_and_incomplete_files_go_through_transformers(tmp_path):
    """A folder that is not a built-in takes transformers' loader (its checks, its quirks);
    files without a pad token the vocabulary knows are not read directly."""
    minilm = Path(resolve_encoder(EncoderConfig(name="minilm-l6")).path)
    folder = tmp_path / "my-encoder"
    shutil.copytree(minilm, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    tok = load_stage_tokenizer(EncoderConfig(name=str(folder)))
    assert (tok.pad_token_id, tok.vocab_size) == (0, 30522)
    assert from_files(folder) is not None
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["pad_token"] = "<no such token>"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert from_files(folder) is None
    (folder / "tokenizer.json").unlink()
    assert from_files(folder) is None
