"""Missing or wrong inputs fail before any work with one clear message (issue 9, item 2).

Each case runs a real stage process: exit status 2, an ``error:`` message on stderr that names
the problem (and the valid choices where there are some), no traceback, and no output written.
``tests/unit/test_stage_errors.py`` covers a missing ``data.dir``, unknown sampler/pooling names,
a non-existent encoder folder and an unknown task key; these are the remaining inputs.
"""

from __future__ import annotations

import time

import pytest

from pipeline.config import EncoderConfig, parse_params
from pipeline.data.cs224n import BUILTIN_FILES, file_spec
from pipeline.errors import UserError
from pipeline.model.encoder_source import hub_kwargs, resolve_encoder
from tests.conftest import tiny_params_dict
from tests.unit.test_stage_errors import run_stage


def _outputs(tmp_path):
    return [p for p in ("data", "models", "results", "predictions") if (tmp_path / p).exists()]


@pytest.mark.parametrize("stage,params,messages", [
    ("prepare", tiny_params_dict(trainn={"epochs": 1}),
     ["trainn: unknown key"]),
    ("train", tiny_params_dict(train={"lr": -1}),
     ["train.lr: Input should be greater than 0"]),
    ("train", tiny_params_dict(train={"resume": "sometimes"}),
     ["train.resume: Input should be 'auto' or 'never'"]),
    ("prepare", tiny_params_dict(data={"source": "kaggle"}),
     ["data.source: Input should be 'synthetic' or 'cs224n'"]),
    ("tokenize", tiny_params_dict(encoder={"trust_remote_code": True}),
     ["encoder.trust_remote_code: trust_remote_code must name the models it trusts"]),
    ("train", tiny_params_dict(loss={"combine": "average"}),
     ["loss.combine: unknown loss combination 'average'; valid choices:", "pcgrad"]),
])
def test_invalid_params_fail_fast_naming_key_and_choices(tmp_path, stage, params, messages):
    proc = run_stage(tmp_path, stage, params)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: invalid params in params.yaml:")
    for message in messages:
        assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _outputs(tmp_path) == []


def test_a_missing_task_file_in_an_existing_data_dir(tmp_path):
    data = tmp_path / "cs224n"
    data.mkdir()
    for splits in BUILTIN_FILES.values():
        for names in splits.values():
            for name in names:
                (data / file_spec(name)[0]).write_text("\tid\tsentence\tsentiment\n0\ta\tb\t1\n")
    (data / "ids-sst-dev.csv").unlink()
    proc = run_stage(tmp_path, "prepare",
                     tiny_params_dict(data={"source": "cs224n", "dir": str(data)}))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: data file not found: {data / 'ids-sst-dev.csv'} "
                                   "(task 'sst', split 'dev')")
    assert _outputs(tmp_path) == []


def test_a_hub_encoder_that_does_not_resolve_offline(tmp_path):
    """Offline (HF_HUB_OFFLINE=1), a hub id not in the local cache is one line, in seconds."""
    start = time.monotonic()
    proc = run_stage(tmp_path, "tokenize",
                     tiny_params_dict(encoder={"name": "no-org/no-such-bert"}),
                     extra_env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - start < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot load the tokenizer of encoder 'no-org/no-such-bert'")
    assert lines[0].endswith("Built-in offline names: minilm-l6, tiny-random")
    assert _outputs(tmp_path) == []


def test_remote_code_is_trusted_only_for_the_named_model():
    params = parse_params(tiny_params_dict())
    assert params.encoder.trust_remote_code == []
    named = EncoderConfig(name="org/custom-bert", trust_remote_code=["org/custom-bert"])
    other = EncoderConfig(name="org/other-bert", trust_remote_code=["org/custom-bert"])
    assert hub_kwargs(resolve_encoder(named), named)["trust_remote_code"] is True
    assert hub_kwargs(resolve_encoder(other), other)["trust_remote_code"] is False
    builtin = EncoderConfig(name="minilm-l6", trust_remote_code=[])
    assert hub_kwargs(resolve_encoder(builtin), builtin)["trust_remote_code"] is False
    with pytest.raises(UserError, match="must name the models it trusts"):
        parse_params(tiny_params_dict(encoder={"trust_remote_code": True}))
