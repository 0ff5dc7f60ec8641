"""Shared fixtures: tiny CPU configs, the project root, the optional real-data folder, and
the session's built end-to-end project (``tests/e2e.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from pipeline.config import deep_merge

if TYPE_CHECKING:
    from pipeline.config import Params
    from tests.e2e import BuiltRepo

ROOT = Path(__file__).resolve().parents[1]

# Small enough to train in seconds on 2 CPU cores with tiny-random, large enough to learn.
TINY_OVERRIDES: dict[str, Any] = {
    "encoder": {"name": "tiny-random"},
    "data": {"source": "synthetic", "dir": None,
             "synthetic": {"train_size": 600, "dev_size": 200, "test_size": 100}},
    "tokenize": {"max_length": 64},
    "train": {"epochs": 5, "lr": 1.0e-3, "head_lr": None, "batch_size": 32,
              "batches_per_epoch": None, "threads": 2},
}


def prepare_for_training(params: Params, work: Path) -> None:
    """What the train stage reads, made in ``work`` as the stages would: ``prepared/``,
    ``tok/`` and an empty ``mlm/`` (MLM off)."""
    from pipeline.data.prepare import prepare
    from pipeline.data.tokenize import tokenize_all
    from pipeline.model.encoder import load_tokenizer

    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tok", params.tasks, load_tokenizer(params.encoder),
                 params.tokenize, params.encoder.name)
    (work / "mlm").mkdir()


def default_params_dict() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params_dict(**extra: Any) -> dict[str, Any]:
    return deep_merge(deep_merge(default_params_dict(), TINY_OVERRIDES), extra)


@pytest.fixture
def tiny_params() -> dict[str, Any]:
    return tiny_params_dict()


def real_data_dir() -> Path | None:
    env = os.environ.get("MTB_CS224N_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    return None


@pytest.fixture
def cs224n_dir() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("real CS224N data not available (set MTB_CS224N_DIR)")
    return d


@pytest.fixture(scope="session")
def e2e_built(tmp_path_factory: pytest.TempPathFactory) -> BuiltRepo:
    """The end-to-end project after its first ``dvc repro``, built once per session: under
    pytest-xdist in the folder the workers share, by whichever worker needs it first."""
    from tests.e2e import build

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return build(shared / "e2e")
