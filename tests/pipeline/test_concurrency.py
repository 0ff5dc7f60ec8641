"""Two queued experiments run with `dvc queue start -j 2` (issue 9, item 4).

Both experiments change a train param away from the baseline (so neither is served from the run
cache) and the workers' logs must show them running at the same time. Both must finish with
their own params and distinct results; every file in the DVC cache must
still hash to its name; checking each experiment back out from the cache must leave the
pipeline up to date with metrics equal to what `dvc exp show` recorded; and rerunning one of
them alone, uncontended, must reproduce its metrics and prediction files byte for byte (so
running beside another experiment changed nothing).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e import copy_built
from tests.pipeline.conftest import output_digests, run

EXPERIMENTS = {"lr-a": "train.lr=0.002", "lr-b": "train.lr=0.003"}  # baseline: 0.001
OUTPUTS = ["results/eval/metrics.json", "predictions", "results/eval/predictions"]


def _wait_for_queue(repo: Path, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = run(repo, "dvc", "queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(3)


def _run_spans(repo: Path) -> list[tuple[datetime, datetime]]:
    """(received, succeeded) of each experiment task, from the DVC queue workers' logs."""
    stamp = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+): INFO/MainProcess\] Task "
    spans = []
    for log in sorted((repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.out")):
        text = log.read_text(errors="replace")
        got = {}
        for event in ("received", "succeeded"):
            m = re.search(stamp + r"dvc\.repo\.experiments\.queue\.tasks\.run_exp\[[^]]+\] "
                          + event, text)
            if m:
                got[event] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if len(got) == 2:
            spans.append((got["received"], got["succeeded"]))
    return spans


def _cache_is_intact(repo: Path) -> int:
    """Every cache object's md5 equals the name it is stored under; returns how many."""
    root = repo / ".dvc" / "cache" / "files" / "md5"
    n = 0
    for p in root.rglob("*"):
        if p.is_file():
            name = p.parent.name + p.name.removesuffix(".dir")
            assert hashlib.md5(p.read_bytes()).hexdigest() == name, p
            n += 1
    return n


def _exp_metrics(repo: Path) -> dict[str, dict]:
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    found = {}
    for base in shown:
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("name") in EXPERIMENTS:
                    data = rev["data"]
                    found[rev["name"]] = {
                        "metrics": data["metrics"]["results/eval/metrics.json"]["data"],
                        "lr": data["params"]["params.yaml"]["data"]["train"]["lr"],
                    }
    return found


@pytest.mark.slow
def test_two_queued_experiments_run_in_parallel_and_keep_the_cache_intact(e2e_built, tmp_path):
    # A private cache: the run cache must not serve either experiment, and every object
    # checked below is this repo's.
    repo = copy_built(e2e_built, tmp_path / "project", shared_cache=False)
    for name, setting in EXPERIMENTS.items():
        run(repo, "dvc", "exp", "run", "--queue", "-n", name, "-S", setting)
    try:
        run(repo, "dvc", "queue", "start", "-j", "2")
        status = _wait_for_queue(repo)
    finally:
        run(repo, "dvc", "queue", "stop", check=False)
    assert "Failed" not in status, status + run(repo, "dvc", "queue", "logs", "lr-a",
                                                 check=False).stdout

    spans = sorted(_run_spans(repo))
    assert len(spans) == 2, spans  # one experiment per worker
    assert spans[1][0] < spans[0][1], f"the two experiments did not overlap: {spans}"
    found = _exp_metrics(repo)
    assert set(found) == set(EXPERIMENTS), found
    assert found["lr-a"]["lr"] == 0.002 and found["lr-b"]["lr"] == 0.003
    assert found["lr-a"]["metrics"] != found["lr-b"]["metrics"]  # distinct results
    assert _cache_is_intact(repo) > 0

    digests = {}
    for name in EXPERIMENTS:
        run(repo, "dvc", "exp", "apply", name)
        run(repo, "dvc", "checkout")
        assert run(repo, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."
        metrics = json.loads((repo / "results/eval/metrics.json").read_text())
        assert metrics == found[name]["metrics"]
        digests[name] = output_digests(repo, OUTPUTS)
    assert digests["lr-a"] != digests["lr-b"]

    # lr-b is applied: rerun its training alone, without the run cache, and compare
    run(repo, "dvc", "repro", "--force", "--downstream", "train")
    assert output_digests(repo, OUTPUTS) == digests["lr-b"]
