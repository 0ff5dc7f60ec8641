"""Each stage reads only the params sections it declares in dvc.yaml.

A stage that reads an undeclared section would not rerun when that section changes, and DVC's
cache would serve stale results. The test runs every stage's ``main`` in a finished pipeline
repo with a params object that records which sections are touched (by the stage or by the
library code it calls), and compares with ``dvc.api.params_show(stages=...)``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from pipeline.config import Params, load_params
from tests.e2e import copy_built

STAGES = ["prepare", "tokenize", "mlm", "train", "evaluate", "export"]


class RecordingParams:
    """Wraps Params; remembers which top-level sections were read."""

    def __init__(self, params: Params) -> None:
        self._params = params
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name in Params.model_fields:
            self.used.add(name)
        return getattr(self._params, name)


@pytest.fixture(scope="module")
def built_repo(e2e_built, tmp_path_factory):
    return copy_built(e2e_built, tmp_path_factory.mktemp("params") / "project")


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_stage_reads_only_declared_sections(built_repo, stage, monkeypatch):
    import dvc.api

    monkeypatch.chdir(built_repo)
    declared = set(dvc.api.params_show(stages=[stage], repo=str(built_repo)))
    module = importlib.import_module(f"stages.{stage}")
    recorders: list[RecordingParams] = []

    def recording_load(path):  # type: ignore[no-untyped-def]
        rec = RecordingParams(load_params(path))
        recorders.append(rec)
        return rec

    monkeypatch.setattr(module, "load_params", recording_load)
    module.main()
    used = set().union(*(r.used for r in recorders))
    assert used, f"stage {stage} read no params at all"
    assert used <= declared, f"stage {stage} reads undeclared sections {used - declared}"


@pytest.mark.slow
def test_enabled_mlm_reads_only_declared_sections(built_repo, monkeypatch):
    """With MLM on, the stage also reads the task list and the seed (the corpus and the
    masks depend on them): both must be declared, or a task change would serve a stale
    encoder."""
    import dvc.api

    from pipeline.config import MlmConfig

    monkeypatch.chdir(built_repo)
    declared = set(dvc.api.params_show(stages=["mlm"], repo=str(built_repo)))
    module = importlib.import_module("stages.mlm")
    recorders: list[RecordingParams] = []

    def recording_load(path):  # type: ignore[no-untyped-def]
        params = load_params(path)
        on = MlmConfig(enabled=True, max_steps=2, device="cpu")
        rec = RecordingParams(params.model_copy(update={"mlm": on}))
        recorders.append(rec)
        return rec

    monkeypatch.setattr(module, "load_params", recording_load)
    module.main()
    used = set().union(*(r.used for r in recorders))
    assert {"tasks", "seed", "mlm", "encoder"} <= used <= declared
