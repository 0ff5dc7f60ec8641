"""``train.precision: auto``: bf16 autocast where the hardware multiplies bf16, fp32 elsewhere;
the resolved precision is recorded, and evaluation/prediction score in the training's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import precision as prec
from pipeline.inference import predict
from pipeline.io import read_json, write_json
from pipeline.precision import PRECISIONS, resolve_precision
from pipeline.predict import INFERENCE_CONFIG, model_precision
from pipeline.train.loop import fit
from tests.unit.microtrain import micro_cfg, micro_data, micro_model

CPU = torch.device("cpu")


@pytest.mark.parametrize("amx,expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpus_bf16_hardware(monkeypatch, amx, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx})
    assert resolve_precision("auto", CPU).name == expected
    # Explicit choices never depend on the machine.
    assert resolve_precision("fp32", CPU).name == "fp32"
    assert resolve_precision("bf16", CPU).name == "bf16"


@pytest.mark.parametrize("available,supported,expected", [
    (True, True, "bf16"), (True, False, "fp32"), (False, True, "fp32"), (False, False, "fp32")])
def test_auto_on_cuda_needs_a_gpu_that_supports_bf16(monkeypatch, available, supported,
                                                     expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True})  # not asked
    assert resolve_precision("auto", torch.device("cuda")).name == expected
    assert resolve_precision("fp16", torch.device("cuda")).name == "fp16"  # allowed on CUDA


def test_auto_elsewhere_and_without_the_amx_flag_is_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True})
    assert resolve_precision("auto", torch.device("meta")).name == "fp32"  # neither CPU nor CUDA
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert resolve_precision("auto", CPU).name == "fp32"  # emulated bf16 is slower than fp32


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads Linux's CPU flags")
def test_auto_on_this_cpu_follows_the_kernels_amx_bf16_flag():
    """An independent witness of the hardware: the flags the Linux kernel reports."""
    flags = {f for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    expected = "bf16" if "amx_bf16" in flags else "fp32"
    assert resolve_precision("auto", CPU).name == expected


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
