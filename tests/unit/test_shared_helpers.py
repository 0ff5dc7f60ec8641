"""Helpers written once: environment defaults, weight-decay groups, device selection."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from pipeline.device import select_device
from pipeline.env import QUIET_DEFAULTS, subprocess_env
from pipeline.errors import UserError
from pipeline.model.freeze import decay_groups, param_groups
from tests.conftest import ROOT


def test_env_sh_exports_the_same_defaults():
    exported = dict(re.findall(r"^export (\w+)=(\S+)$",
                               (ROOT / "scripts/env.sh").read_text(), flags=re.M))
    assert {k: exported.get(k) for k in QUIET_DEFAULTS} == QUIET_DEFAULTS


def test_defaults_never_override_the_callers_choice():
    env = subprocess_env({"TOKENIZERS_PARALLELISM": "true", "PATH": "/bin"})
    assert env["TOKENIZERS_PARALLELISM"] == "true"
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert env["PATH"].endswith("/bin") and env["PATH"] != "/bin"


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_train_and_mlm_decay_the_same_parameters():
    model = Tiny()
    mlm = decay_groups(model.named_parameters(), 0.01)
    train = param_groups(model, 1e-3, None, 0.01)
    decayed = {id(p) for g in train if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(p) for p in mlm[0]["params"]}
    assert decayed == {id(model.encoder.weight), id(model.head.weight)}
    assert mlm[1]["weight_decay"] == 0.0 and len(mlm[1]["params"]) == 4


def test_device_selection():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="mlm.device=cuda"):
            select_device("cuda", "mlm.device")


def test_a_cuda_device_turns_off_cudnn_attention(monkeypatch):
    """cuDNN attention builds a plan per input shape (bf16 steps of ~1 s on an H200 with
    length-bucketed batches), so choosing CUDA switches it off; the CPU leaves it alone."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    was = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        select_device("cpu")
        assert torch.backends.cuda.cudnn_sdp_enabled()
        assert select_device("auto").type == "cuda"
        assert not torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(was)
