"""A real local Prefect server (127.0.0.1, free port, SQLite, isolated PREFECT_HOME) and a
built tiny DVC project for the flow tests (a copy of the session's end-to-end build, sharing
its DVC cache); every process started here is stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# Before anything imports prefect: never touch the user's ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="mtb-prefect-home-")
os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90")

from tests.conftest import ROOT  # noqa: E402
from tests.e2e import copy_built  # noqa: E402
from tests.pipeline.conftest import commit_all, env  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process group started here: SIGTERM (a clean shutdown for the server), then
    SIGKILL. Not SIGINT: a serving runner did not exit on it and sat out the whole wait
    before the SIGKILL (20 s of teardown per test in the suite's durations)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Server:
    def __init__(self, url: str, home: Path) -> None:
        self.url, self.home = url, home
        self.api = f"{url}/api"

    def env(self, home: Path) -> dict[str, str]:
        e = env()
        e.update(PREFECT_API_URL=self.api, PREFECT_HOME=str(home),
                 PREFECT_RUNNER_POLL_FREQUENCY="2", PREFECT_LOGGING_LEVEL="INFO")
        return e


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    e = env()
    e.update(PREFECT_HOME=str(home),
             PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db",
             PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="3",
             PREFECT_SERVER_ANALYTICS_ENABLED="false",
             # the UI's API address defaults to port 4200; point it at this server
             PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api")
    e.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], env=e, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", home)
    try:
        wait_http(f"{server.api}/health", 120, proc)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.api}):
            yield server
    finally:
        stop(proc)
        log.close()


# The same settings as test_reports' leaderboard experiments: the run cache serves whichever
# of the two runs them second.
SWEEP_ABLATIONS = ("anneal", "cls-pooling", "linear-pair-head")


@pytest.fixture(scope="session")
def built_repo(e2e_built, tmp_path_factory) -> Path:
    """The end-to-end project after one full `dvc repro`, committed (the experiments'
    baseline), with three ablations: the weekly sweep runs every declared one. No stage reads
    the ablations section, so the build's outputs stay up to date."""
    repo = copy_built(e2e_built, tmp_path_factory.mktemp("flows") / "project")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ablations"] = {n: params["ablations"][n] for n in SWEEP_ABLATIONS}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(repo, "three ablations for the sweep")
    return repo


def copy_repo(repo: Path, dest: Path) -> Path:
    shutil.copytree(repo, dest, symlinks=True)
    return dest


def start_serve(server: Server, project: Path, log_path: Path, *extra: str) -> subprocess.Popen:
    """`python -m pipeline.flows.serve` against the test server (as the README starts it)."""
    home = log_path.parent / f"{log_path.stem}-home"
    home.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.flows.serve", "--project", str(project), *extra],
        cwd=ROOT, env=server.env(home), stdout=log_path.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
