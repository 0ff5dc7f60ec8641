"""The flows served from `python -m pipeline.flows.serve` against a real local Prefect server,
triggered through the API as the UI does: schedules, experiments, validation, sweeps, the UI."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.flows.conftest import SWEEP_ABLATIONS, copy_repo, start_serve, stop
from tests.pipeline.conftest import run

# A real Prefect server: one per worker, so the Prefect tests share one xdist group.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]
SWEEP = set(SWEEP_ABLATIONS)
TINY_SWEEP = {"budget": None, "seeds": 1}


def wait_deployment(name: str, proc: subprocess.Popen, log: Path, project: Path,
                    timeout: float = 120) -> Any:
    """The deployment once this serve process has registered it for `project`."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited:\n{log.read_text()[-3000:]}")
            try:
                deployment = client.read_deployment_by_name(name)
                if deployment.parameters.get("project") == str(project.resolve()):
                    return deployment
            except Exception:
                pass
            time.sleep(1)
    raise AssertionError(f"deployment {name} not registered:\n{log.read_text()[-3000:]}")


def logs_of(flow_run_ids: list | None = None, after: datetime | None = None) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp

    log_filter = LogFilter(
        flow_run_id=LogFilterFlowRunId(any_=flow_run_ids) if flow_run_ids else None,
        timestamp=LogFilterTimestamp(after_=after) if after else None)
    out: list[str] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_logs(log_filter=log_filter, limit=200, offset=len(out))
            out.extend(entry.message for entry in page)
            if len(page) < 200:
                return out


def wait_logs(flow_run_id: Any, *needles: str, timeout: float = 30) -> list[str]:
    """Logs arrive in batches, possibly just after the run is final: poll for any of
    `needles`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = logs_of([flow_run_id])
        found = any(needle in line for line in lines for needle in needles)
        if found or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def artifact(flow_run_id: Any, key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            key=ArtifactFilterKey(any_=[key])))
    assert found, f"no '{key}' artifact on flow run {flow_run_id}"
    data = found[0].data
    if found[0].type == "table" and isinstance(data, str):
        return json.loads(data)
    return data


def trigger(name: str, parameters: dict[str, Any], timeout: float = 600) -> Any:
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters, timeout=timeout, poll_interval=2)


def exp_names(repo: Path) -> set[str]:
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    return {r.get("name") for b in shown for e in b.get("experiments") or []
            for r in e["revs"]}


@pytest.fixture(scope="module")
def served(prefect_server, built_repo, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc = start_serve(prefect_server, built_repo, log)
    try:
        for name in ("repro/nightly", "experiment/ablation", "sweep/weekly"):
            wait_deployment(name, proc, log, built_repo)
        yield built_repo
    finally:
        stop(proc)


def test_interval_schedule_runs_repro_without_trigger(prefect_server, built_repo, tmp_path):
    """Acceptance 3: a served deployment on a 10 s interval creates and completes a run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    repo = copy_repo(built_repo, tmp_path / "scheduled")
    log = tmp_path / "serve.log"
    proc = start_serve(prefect_server, repo, log, "--repro-every", "10", "--sweep-cron", "")
    try:
        deployment = wait_deployment("repro/nightly", proc, log, repo)
        deadline = time.monotonic() + 150
        done = []
        with get_client(sync_client=True) as client:
            while not done and time.monotonic() < deadline:
                runs = client.read_flow_runs(deployment_filter=DeploymentFilter(
                    id=DeploymentFilterId(any_=[deployment.id])))
                done = [r for r in runs if r.state and r.state.is_completed()]
                failed = [r for r in runs if r.state and r.state.is_failed()]
                assert not failed, failed[0].state.message
                time.sleep(2)
        assert done, f"no completed scheduled run:\n{log.read_text()[-3000:]}"
        assert done[0].auto_scheduled
        lines = wait_logs(done[0].id, "didn't change")
        assert any("Stage 'train' didn't change" in line for line in lines), lines[-20:]
    finally:
        stop(proc)


def test_repro_runs_started_together_queue_instead_of_colliding(prefect_server, built_repo,
                                                                tmp_path):
    """Two forced repro runs created at once (two clicks on Run, or a scheduled run that comes
    due while the last still runs): the second waits for a slot and both complete, one after
    the other. Without the deployment's limit the second failed on DVC's lock ("is busy")."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    repo = copy_repo(built_repo, tmp_path / "twice")
    log = tmp_path / "serve.log"
    proc = start_serve(prefect_server, repo, log, "--repro-cron", "", "--sweep-cron", "")
    try:
        wait_deployment("repro/nightly", proc, log, repo)
        ids = [run_deployment("repro/nightly", parameters={"force": True}, timeout=0).id
               for _ in range(2)]
        deadline = time.monotonic() + 480
        with get_client(sync_client=True) as client:
            while True:
                runs = [client.read_flow_run(i) for i in ids]
                if all(r.state and r.state.is_final() for r in runs):
                    break
                assert time.monotonic() < deadline, (
                    f"runs not final: {[r.state_name for r in runs]}\n{log.read_text()[-3000:]}")
                time.sleep(2)
            for r in runs:
                assert r.state.is_completed(), r.state.message
            waited = [any(s.name == "AwaitingConcurrencySlot"
                          for s in client.read_flow_run_states(r.id)) for r in runs]
        first, second = sorted(runs, key=lambda r: r.start_time)
        assert first.end_time <= second.start_time, "the two repro runs overlapped"
        assert any(waited), "neither run waited for the deployment's slot"
        for r in runs:
            lines = wait_logs(r.id, "Running stage 'train'")
            assert any("Running stage 'train'" in line for line in lines), lines[-20:]
    finally:
        stop(proc)


def test_experiment_from_the_api(served):
    """Acceptance 1: trigger `experiment` with sampler=anneal as the UI would."""
    flow_run = trigger("experiment/ablation", {"ablation": {"sampler": "anneal"}})
    assert flow_run.state.is_completed(), flow_run.state.message
    assert "sampler-anneal" in exp_names(served)
    rows = artifact(flow_run.id, "leaderboard")
    row = next(r for r in rows if r["name"] == "sampler-anneal")
    assert row["params"] == "sampler=anneal" and 0 < row["overall"] <= 1
    markdown = artifact(flow_run.id, "experiment-metrics")
    assert "sampler-anneal" in markdown and "| overall |" in markdown
    # train reran: it ran, or the run cache the built project's copies share served it
    # (another test may have run sampler=anneal on the same baseline first)
    trained = ("Running stage 'train'", "Stage 'train' is cached - skipping run")
    lines = wait_logs(flow_run.id, *trained)
    assert any(t in line for line in lines for t in trained)
    assert any("Stage 'tokenize' didn't change" in line for line in lines)
    assert run(served, "git", "status", "--porcelain").stdout.strip() in ("", "?? leaderboard.csv")


@pytest.mark.parametrize("ablation, reason", [
    ({"overrides": {"sampler": "anel"}}, "unknown sampler 'anel'; valid choices: anneal"),
    ({"overrides": {"train.nope": "1"}}, "train.nope: unknown key"),
    ({"lr": 1e-4, "overrides": {"optimizer.name": "adam"}}, "'optimizer' is not in the top level"),
])
def test_invalid_ablation_fails_before_dvc(served, ablation, reason):
    """Acceptance 2: the reason is in the flow run's state message; DVC never ran."""
    before = exp_names(served)
    flow_run = trigger("experiment/ablation", {"ablation": ablation}, timeout=120)
    assert flow_run.state.is_failed()
    assert reason in flow_run.state.message
    lines = logs_of([flow_run.id])
    assert not any("exp run" in line or "Running stage" in line for line in lines)
    assert exp_names(served) == before


def test_form_rejects_unknown_sampler(served):
    """The typed field itself: the server refuses an unknown sampler before creating a run."""
    with pytest.raises(Exception, match="sampler"):
        trigger("experiment/ablation", {"ablation": {"sampler": "anel"}}, timeout=30)


def test_prefect_ui_shows_deployment_and_run(served, prefect_server, tmp_path):
    """Acceptance 4: headless Chromium renders the deployments and a completed run (its own:
    a no-op `repro` of the built project, so the test needs no other test to have run)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed")
    done = trigger("repro/nightly", {}, timeout=300)
    assert done.state.is_completed(), done.state.message
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--virtual-time-budget=15000", "--window-size=1400,1000",
             f"--user-data-dir={tmp_path / 'chromium'}"]

    def chrome(*args: str) -> str:
        proc = subprocess.run([chromium, *flags, *args], capture_output=True, text=True,
                              timeout=120)
        return proc.stdout

    deployments = chrome("--dump-dom", f"{prefect_server.url}/deployments")
    for name in ("ablation", "nightly", "weekly", "experiment", "sweep"):
        assert re.search(rf">\s*{name}\s*<", deployments), name
    run_url = f"{prefect_server.url}/runs/flow-run/{done.id}"
    page = chrome("--dump-dom", run_url)
    assert done.name in page and "Completed" in page
    shots = Path(os.environ.get("MTB_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for name, url in (("prefect-ui-deployments.png", f"{prefect_server.url}/deployments"),
                      ("prefect-ui-flow-run.png", run_url)):
        chrome(f"--screenshot={shots / name}", url)
        assert (shots / name).stat().st_size > 10_000


def test_sweep_and_cached_rerun(served):
    """Acceptance 5: three ablations, leaderboard artifact + CSV, rerun restored from cache."""
    # The weekly default is the real-data budget with 3 seeds: here the tiny synthetic runs.
    first = trigger("sweep/weekly", TINY_SWEEP)
    assert first.state.is_completed(), first.state.message
    names = {r["name"] for r in artifact(first.id, "leaderboard")}
    assert SWEEP <= names and SWEEP <= exp_names(served)
    with (served / "leaderboard.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert SWEEP <= {r["name"] for r in table}
    assert list(table[0])[:3] == ["name", "params", "overall"]
    overall = [float(r["overall"]) for r in table]
    assert overall == sorted(overall, reverse=True)

    started = datetime.now(timezone.utc)
    again = trigger("sweep/weekly", TINY_SWEEP)
    assert again.state.is_completed(), again.state.message
    # One policy for a reused experiment name (pipeline/dvc_run.py): the rerun replaces it.
    rerun = {r["name"] for r in artifact(again.id, "leaderboard")}
    assert SWEEP <= rerun and not any(n.endswith("-2") for n in rerun), rerun
    lines = logs_of(after=started)
    assert sum("Stage 'train' is cached - skipping run" in line for line in lines) == 3, lines
    assert not any("Running stage 'train'" in line for line in lines)
