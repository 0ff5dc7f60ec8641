"""The `dvc-training` concurrency limit queues a second experiment (issue 9, item 4).

Two ``experiment`` flow runs start at once against the real local Prefect server. DVC itself
is replaced by a recorder that "trains" for a few seconds and notes how many trainings are in
progress, so the test measures the limit and nothing else. With the limit served by default
(one slot), or with no limit yet because no `serve` ran on that server (the flow then
creates it), the second training waits for the first; with two slots the same two runs overlap,
which shows the recorder would see an overlap if the limit let one through.
"""

from __future__ import annotations

import contextvars
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A real Prefect server: one per worker, so the Prefect tests share one xdist group.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]

TRAIN_SECONDS = 3.0


@pytest.fixture
def project(tmp_path) -> Path:
    """Enough of a project for the flow's checks (dvc.yaml, .dvc/, params.yaml)."""
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / ".dvc").mkdir()
    return tmp_path


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.spans: list[tuple[float, float]] = []

    def dvc(self, project: Path, args: list[str]) -> str:
        assert args[:3] == ["exp", "run", "--temp"], args
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        start = time.monotonic()
        time.sleep(TRAIN_SECONDS)
        with self.lock:
            self.active -= 1
            self.spans.append((start, time.monotonic()))
        return ""


def _two_experiments_at_once(project: Path, monkeypatch, slots: int | None) -> Recorder:
    """``slots``: what `serve --max-trainings N` sets; None: no serve ran (no limit yet)."""
    from pipeline.ablation_form import Ablation
    from pipeline.flows import flows
    from pipeline.flows.serve import ensure_training_limit

    if slots is None:
        _delete_limit()
    else:
        ensure_training_limit(slots)
    rec = Recorder()
    monkeypatch.setattr(flows, "dvc", rec.dvc)
    monkeypatch.setattr(flows, "exp_show", lambda _path: [])
    errors: list[BaseException] = []

    def one(lr: float) -> None:
        from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

        try:  # logs stay local: a log flush to the server at exit would outlive the server
            with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}):
                flows.experiment(Ablation(name=f"lr-{lr}", lr=lr), project=str(project),
                                 publish=False)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    # each thread runs in a copy of this context, so it talks to the test server
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(one, lr))
               for lr in (1e-4, 2e-4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(rec.spans) == 2
    return rec


def _delete_limit() -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    from pipeline.flows.flows import TRAINING_LIMIT

    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(TRAINING_LIMIT)
        except ObjectNotFound:
            pass


@pytest.mark.parametrize("slots", [1, None], ids=["served-limit", "no-serve-yet"])
def test_second_training_waits_for_the_first(prefect_server, project, monkeypatch, slots):
    rec = _two_experiments_at_once(project, monkeypatch, slots=slots)
    assert rec.peak == 1
    (s1, e1), (s2, e2) = sorted(rec.spans)
    assert s2 >= e1  # queued, not run beside the first


def test_with_two_slots_the_same_runs_overlap(prefect_server, project, monkeypatch):
    try:
        rec = _two_experiments_at_once(project, monkeypatch, slots=2)
    finally:
        from pipeline.flows.serve import ensure_training_limit

        ensure_training_limit(1)
    assert rec.peak == 2
