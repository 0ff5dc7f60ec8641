"""The `dvc-training` concurrency limit queues a second experiment (issue 9, item 4).

Two ``experiment`` flow runs start at once against the real local Prefect server. DVC itself
is replaced by a recorder that notes when each "training" starts and ends and how many are in
progress, so the test measures the limit and nothing else. No sleep decides the outcome: the
first training holds its slot until the server has refused the second run a slot (HTTP 423,
seen on the client) or the second training has started beside it, whichever comes first. With
the limit served by default (one slot), or with no limit yet because no `serve` ran on that
server (the flow then creates it), the second run is refused and waits for the first; with two
slots the same two runs overlap, which shows the recorder sees an overlap when the limit lets
one through.
"""

from __future__ import annotations

import contextvars
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

# A real Prefect server: one per worker, so the Prefect tests share one xdist group.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]

HOLD_LIMIT_S = 120  # a guard against a hang; the hold ends on an event, not on time


@pytest.fixture
def project(tmp_path) -> Path:
    """Enough of a project for the flow's checks (dvc.yaml, .dvc/, params.yaml)."""
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / ".dvc").mkdir()
    return tmp_path


class Recorder:
    """Stands in for DVC: each "training" records its span; the first holds its slot until
    the other run is refused a slot or trains beside it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = self.peak = self.started = self.refusals = 0
        self.spans: list[tuple[float, float]] = []
        self.held_until_decided: list[bool] = []

    def refused(self) -> None:
        with self.cond:
            self.refusals += 1
            self.cond.notify_all()

    def dvc(self, project: Path, args: list[str]) -> str:
        assert args[:3] == ["exp", "run", "--temp"], args
        with self.cond:
            self.started += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            start = time.monotonic()
            self.cond.notify_all()
            self.held_until_decided.append(self.cond.wait_for(
                lambda: self.refusals > 0 or self.active > 1 or self.started > 1,
                timeout=HOLD_LIMIT_S))
            self.active -= 1
            self.spans.append((start, time.monotonic()))
            self.cond.notify_all()
        return ""


def _watch_refusals(monkeypatch, rec: Recorder) -> None:
    """Tell ``rec`` whenever the server refuses a slot (423 Locked: the limit is full)."""
    from prefect.client.orchestration import PrefectClient

    real = PrefectClient.increment_concurrency_slots_with_lease

    async def watched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return await real(self, *args, **kwargs)
        except httpx.HTTPStatusError as err:
            if err.response.status_code == 423:
                rec.refused()
            raise

    monkeypatch.setattr(PrefectClient, "increment_concurrency_slots_with_lease", watched)


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
    _watch_refusals(monkeypatch, rec)
    monkeypatch.setattr(flows, "dvc", rec.dvc)
    monkeypatch.setattr(flows, "exp_show", lambda _path: [])
    monkeypatch.setattr(flows, "experiment_list", lambda _path: set())
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
        t.join(timeout=2 * HOLD_LIMIT_S + 60)
    assert not errors, errors
    assert len(rec.spans) == 2 and all(rec.held_until_decided), rec.held_until_decided
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
    assert rec.refusals >= 1  # the server turned the second run away while the first trained
    assert rec.peak == 1
    (s1, e1), (s2, e2) = sorted(rec.spans)
    assert s2 >= e1  # queued, not run beside the first


def test_with_two_slots_the_same_runs_overlap(prefect_server, project, monkeypatch):
    try:
        rec = _two_experiments_at_once(project, monkeypatch, slots=2)
    finally:
        from pipeline.flows.serve import ensure_training_limit

        ensure_training_limit(1)
    assert rec.peak == 2 and rec.refusals == 0
