"""``train.precision: auto``: bf16 autocast where the hardware multiplies bf16, fp32 elsewhere;
the resolved precision is recorded, and evaluation/prediction score in the training's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.inference import predict
from pipeline.io import read_json, write_json
from pipeline.predict import INFERENCE_CONFIG, model_precision
from pipeline.train import precision as prec
from pipeline.train.loop import fit
from pipeline.train.precision import PRECISIONS, resolve_precision
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")


@pytest.mark.parametrize("amx,expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpus_bf16_hardware(monkeypatch, amx, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx})
    assert resolve_precision("auto", CPU).name == expected
    # Explicit choices never depend on the machine.
    assert resolve_precision("fp32", CPU).name == "fp32"
    assert resolve_precision("bf16", CPU).name == "bf16"


def test_auto_on_this_machine_matches_its_capabilities():
    has = bool(torch.cpu.get_capabilities().get("amx_bf16"))
    assert resolve_precision("auto", CPU).dtype == (torch.bfloat16 if has else None)


@pytest.mark.parametrize("name", ["bf16", "fp32"])
def test_fit_records_the_resolved_precision(monkeypatch, name):
    monkeypatch.setattr(prec, "native_bf16", lambda device: name == "bf16")
    res = fit(micro_model(), micro_data(), micro_data(16, 1),
              cfg=micro_cfg(batches_per_epoch=2, precision="auto"), sampler="round_robin",
              seed=0, pad_id=0, in_overall={"single", "pair", "reg"})
    assert res.precision == name


def test_predict_runs_under_the_given_autocast():
    model = micro_model()
    data = micro_data(64, 3)["single"]
    fp32 = predict(model, data, 16, 0, CPU, PRECISIONS["fp32"])
    bf16 = predict(model, data, 16, 0, CPU, PRECISIONS["bf16"])
    assert fp32.scores is not None and bf16.scores is not None
    diff = np.abs(fp32.scores - bf16.scores).max()
    assert 0 < diff < 0.05  # bf16 rounding shows, but the scores stay close


def test_saved_models_are_scored_in_their_trainings_precision(tmp_path: Path, monkeypatch):
    write_json(tmp_path / INFERENCE_CONFIG, {"max_length": 8, "precision": "auto"})
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    assert model_precision(tmp_path, CPU).name == "bf16"
    monkeypatch.setattr(prec, "native_bf16", lambda device: False)
    assert model_precision(tmp_path, CPU).name == "fp32"
    write_json(tmp_path / INFERENCE_CONFIG, {"max_length": 8, "precision": "fp16"})
    assert model_precision(tmp_path, CPU).name == "fp32"  # a CUDA-only choice, on a CPU
    cfg = read_json(tmp_path / INFERENCE_CONFIG)
    del cfg["precision"]  # a model saved before precision was recorded
    write_json(tmp_path / INFERENCE_CONFIG, cfg)
    assert model_precision(tmp_path, CPU).name == "fp32"
