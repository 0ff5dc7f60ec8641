"""``train.compile``: the encoder is compiled in place and a run trains and saves as usual."""

from __future__ import annotations

import shutil

import pytest
import torch

from pipeline.config import EncoderConfig, ModelConfig
from pipeline.model.encoder import load_encoder
from pipeline.model.multitask import MultitaskModel
from pipeline.train.loop import fit
from tests.unit.microtrain import TASKS, micro_cfg, micro_data, weights


def compile_supported() -> bool:
    return hasattr(torch, "compile") and shutil.which("gcc") is not None


@pytest.mark.slow
@pytest.mark.skipif(not compile_supported(), reason="torch.compile needs a C compiler on CPU")
def test_compile_trains_tiny_random_on_cpu_with_unchanged_parameter_names(monkeypatch):
    from torch._inductor import config as inductor_config

    # Compile in this process: a pool of compile workers would import torch once each and
    # outlive the test (15 of its ~110 CPU seconds on 2 cores, on a cold inductor cache).
    monkeypatch.setattr(inductor_config, "compile_threads", 1)
    encoder = load_encoder(EncoderConfig(name="tiny-random"), seed=0)
    model = MultitaskModel(encoder, TASKS, ModelConfig(), "tiny-random")
    names = list(model.state_dict())
    before = weights(model)
    res = fit(model, micro_data(), micro_data(16, 1),
              cfg=micro_cfg(compile=True, batches_per_epoch=3), sampler="round_robin", seed=0,
              pad_id=0, in_overall={"single", "pair", "reg"})
    assert res.steps == 3
    assert list(model.state_dict()) == names  # checkpoints and saved weights keep their keys
    after = weights(model)
    assert any(not torch.equal(before[k], after[k]) for k in names)
    assert all(torch.isfinite(v).all() for v in after.values())
