"""Determinism (issue 9, item 5) and no secrets in outputs (item 6).

Two full ``dvc repro`` runs of the same params and seed, in two separate projects and
processes, give byte-identical ``results/eval/metrics.json``, prediction files
(``predictions/`` and ``results/eval/predictions/``) and model weights on CPU: the first run
is the session's build of the end-to-end project (``tests/e2e.py``), the second a fresh project
with its own empty cache. The second run sees canary secrets in its environment; no output
file, DVC cache file or log line may contain them. On CUDA,
deterministic kernels are the ``train.deterministic`` param: the switch is tested here on any
machine, and two CUDA trainings are compared where CUDA exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pipeline.train.determinism import configure_determinism
from tests.e2e import e2e_params_dict
from tests.pipeline.conftest import changed_stages, make_repo, output_digests, run

CANARIES = {"HF_TOKEN": "hf_canaryTOKEN1234567890", "AWS_SECRET_ACCESS_KEY": "canarySECRETkey42",
            "MTB_PASSWORD": "canary-password-xyzzy"}
COMPARED = ["results/eval/metrics.json", "results/eval/predictions", "predictions",
            "models/multitask/model.safetensors"]


def _leaks(repo: Path, logs: str) -> list[str]:
    found = [name for name, value in CANARIES.items() if value in logs]
    for p in repo.rglob("*"):
        if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]:
            data = p.read_bytes()
            found += [f"{p.relative_to(repo)}: {n}" for n, v in CANARIES.items()
                      if v.encode() in data]
    return found


@pytest.mark.slow
def test_two_full_runs_are_byte_identical_and_leak_no_secrets(e2e_built, tmp_path, monkeypatch):
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    repo = make_repo(tmp_path / "project", e2e_params_dict())  # its own, empty DVC cache
    proc = run(repo, "dvc", "repro")
    log = proc.stdout + proc.stderr
    assert "is cached - skipping run" not in log
    assert len(changed_stages(log)) == 6
    assert not _leaks(repo, log), _leaks(repo, log)
    digests = output_digests(repo, COMPARED)
    assert len(digests) >= 1 + 8 + 4, digests  # metrics, 8 prediction files, per task
    assert digests == output_digests(e2e_built.path, COMPARED)


@pytest.fixture
def restore_torch_flags():
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
    if saved[4] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


@pytest.mark.parametrize("device,param,expected", [
    ("cpu", False, True), ("cpu", True, True), ("cuda", True, True), ("cuda", False, False)])
def test_deterministic_mode_is_a_param_on_cuda(restore_torch_flags, monkeypatch, device, param,
                                               expected):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert configure_determinism(torch.device(device), param) is expected
    assert torch.are_deterministic_algorithms_enabled() is expected
    assert torch.backends.cudnn.deterministic is expected
    assert torch.backends.cudnn.benchmark is not expected
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    assert cublas == (":4096:8" if device == "cuda" and expected else None)


def test_fit_applies_the_param(monkeypatch):
    """The training loop hands ``train.deterministic`` to the switch (not a constant)."""
    from pipeline.config import LossConfig
    from pipeline.train import loop
    from tests.unit.microtrain import micro_cfg, micro_data, micro_model

    seen = []

    def spy(device, deterministic):
        seen.append((device.type, deterministic))
        return True

    monkeypatch.setattr(loop, "configure_determinism", spy)
    cfg = micro_cfg(epochs=1, batches_per_epoch=1, deterministic=False)
    loop.fit(micro_model(), micro_data(), micro_data(16, 1), cfg=cfg, sampler="proportional",
             seed=0, pad_id=0, in_overall={"single", "pair", "reg"}, loss_cfg=LossConfig())
    assert seen == [("cpu", False)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_two_cuda_trainings_match_with_deterministic_on(restore_torch_flags):
    from pipeline.config import LossConfig
    from pipeline.train import loop
    from tests.unit.microtrain import micro_cfg, micro_data, micro_model

    weights = []
    for _ in range(2):
        model = micro_model()
        cfg = micro_cfg(epochs=1, batches_per_epoch=6, device="cuda", deterministic=True)
        loop.fit(model, micro_data(), micro_data(16, 1), cfg=cfg, sampler="proportional",
                 seed=0, pad_id=0, in_overall={"single", "pair", "reg"}, loss_cfg=LossConfig())
        weights.append({k: v.detach().cpu() for k, v in model.state_dict().items()})
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
