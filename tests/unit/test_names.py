"""The torch-free names of ``pipeline.names`` agree with the implementations, and validating
params imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pipeline import names
from tests.conftest import ROOT


def test_validating_params_imports_no_torch():
    code = ("import sys\nimport pipeline.config as c\n"
            "c.load_params('params.yaml')\n"
            "loaded = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
            "assert not loaded, loaded")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


def test_each_registry_holds_exactly_the_names():
    from pipeline.model.heads import HEADS
    from pipeline.model.pooling import POOLINGS
    from pipeline.precision import CHOICES
    from pipeline.train.combine import COMBINERS
    from pipeline.train.samplers import SAMPLERS
    from pipeline.train.schedules import SCHEDULES

    assert list(HEADS) == list(names.HEADS)
    assert list(POOLINGS) == list(names.POOLINGS)
    assert list(COMBINERS) == list(names.COMBINERS)
    assert list(CHOICES) == list(names.PRECISION_CHOICES)
    assert list(SAMPLERS) == list(names.SAMPLERS)
    assert list(SCHEDULES) == list(names.SCHEDULES)


def test_a_registry_that_drifts_fails_on_import():
    with pytest.raises(RuntimeError, match=r"implemented only \['new'\], named only \[\]"):
        names.check_registry("sampler", [*names.SAMPLERS, "new"], names.SAMPLERS)


@pytest.mark.parametrize("head", list(names.HEADS))
def test_a_head_needs_a_pair_exactly_when_its_fit_says_so(head):
    from pipeline.model.heads import HEADS, Encoded, HeadSpec

    spec = HeadSpec(hidden=8, out=2, task_type="classification", siamese=False, dropout=0.0,
                    mlp_hidden=4, min_label=0.0, max_label=5.0)
    x = Encoded(torch.randn(3, 5, 8), torch.ones(3, 5), torch.randn(3, 8))
    module = HEADS[head](spec)
    if names.HEADS[head].needs_siamese:
        with pytest.raises(AssertionError):
            module(x)
    else:
        assert module(x).shape == (3, 2)


def test_auto_pair_head_resolves_by_task():
    assert names.resolve_head("auto", "regression", 1, True) == "cosine"
    assert names.resolve_head("auto", "classification", 3, True) == "sbert"
    assert names.valid_heads("classification", 5, False) == list(names.SINGLE_HEADS)
