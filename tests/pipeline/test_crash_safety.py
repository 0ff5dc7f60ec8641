"""SIGKILL during a stage leaves nothing that looks complete (issue 9, item 3).

One tiny project is driven through ``dvc repro`` four times, each run's whole process group
(DVC and the stage) SIGKILLed the moment the target stage starts writing an output (its
staging folder or the output itself appears) -- for ``train``, the moment its first
mid-epoch checkpoint lands. After each kill:

- every output of the killed stage is absent, or complete: byte-identical to what the
  finished pipeline ends with (a half-written output would differ);
- DVC does not take the stage as done (``dvc status`` lists it).

A last ``dvc repro`` completes; ``train`` (``resume: auto``) continues from its checkpoint;
the pipeline is then up to date and no staging folder of a killed writer is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.io import atomic_path
from tests.conftest import tiny_params_dict
from tests.pipeline.conftest import env, make_repo, run

PARAMS = {"train": {"epochs": 2, "checkpoint_every": 3, "resume": "auto"},
          "data": {"synthetic": {"train_size": 200, "dev_size": 60, "test_size": 30}}}
# stage -> (its outputs, the paths whose appearance means "it is writing now")
TARGETS = {
    "tokenize": (["data/tokenized"], ["data/tokenized", "data/.tokenized.*"]),
    "train": (["models/multitask"], ["checkpoints/train/step-*/state.pt", "models/multitask",
                                     "models/.multitask.*"]),
    "evaluate": (["results/eval/predictions", "results/eval/metrics.json"],
                 ["results/eval/predictions", "results/eval/.predictions.*",
                  "results/eval/metrics.json", "results/eval/.metrics.json.*"]),
    "export": (["predictions", "results/export/report.json",
                "results/export/leaderboard_row.csv"],
               ["predictions", ".predictions.*", "results/export/*", "results/export/.*"]),
}


def _snapshot(repo: Path, rel: str) -> dict[str, str] | None:
    """sha256 of every file under an output, or None when it does not exist."""
    root = repo / rel
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _repro_killed_when_writing(repo: Path, triggers: list[str], timeout: float = 300) -> str:
    proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not any(any(repo.glob(t)) for t in triggers):
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"dvc repro ended before {triggers} appeared:\n{out}")
            assert time.monotonic() < deadline, f"{triggers} never appeared"
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.stdout.close()
    return out


@pytest.mark.slow
def test_sigkill_in_each_stage_leaves_no_partial_output_and_rerun_completes(tmp_path):
    repo = make_repo(tmp_path / "project", tiny_params_dict(**PARAMS))
    after_kill: dict[str, dict[str, str] | None] = {}
    for stage, (outs, triggers) in TARGETS.items():
        log = _repro_killed_when_writing(repo, triggers)
        assert f"Running stage '{stage}'" in log, log[-2000:]
        for rel in outs:
            after_kill[rel] = _snapshot(repo, rel)
        if stage == "train":
            assert after_kill["models/multitask"] is None  # killed mid-training
        status = json.loads(run(repo, "dvc", "status", "--json").stdout)
        assert stage in status, status  # DVC does not take it as complete

    final = run(repo, "dvc", "repro")
    assert "Running stage 'train'" not in final.stdout  # train finished in the run after its kill
    assert run(repo, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    for rel, snap in after_kill.items():
        assert snap is None or snap == _snapshot(repo, rel), f"{rel} was left half-written"
    summary = json.loads((repo / "models/multitask/train_summary.json").read_text())
    assert summary["resumed_from"], "train did not resume from its checkpoint"
    leftovers = [p for p in repo.rglob(".*.tmp") if ".dvc" not in p.parts and ".git" not in p.parts]
    assert leftovers == [], leftovers


def test_staging_left_by_a_killed_writer_is_cleared_by_the_next_write(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "out"
    stale = tmp_path / f".out.{dead.pid}.abcd1234.tmp"
    live = tmp_path / f".out.{os.getpid()}.efgh5678.tmp"  # a writer still at work
    other = tmp_path / f".out.csv.{dead.pid}.ijkl9012.tmp"  # another target's staging
    for d in (stale, live, other):
        (d / "out").mkdir(parents=True)
    with atomic_path(target) as staged:
        staged.write_text("done")
    assert target.read_text() == "done"
    assert not stale.exists() and live.exists() and other.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_staging_of_a_zombie_or_a_reused_pid_is_cleared(tmp_path):
    """A killed writer can linger as a zombie (an init that does not reap orphans), and its pid
    can go to a new process; neither may keep its staging folder alive forever (CI saw a
    ``.predictions.<pid>.*.tmp`` left after the kill test)."""
    zombie = subprocess.Popen(["true"])  # never waited for: a zombie until the end of the test
    newcomer = subprocess.Popen(["sleep", "30"])  # alive, but started after the folder below
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        from_zombie = tmp_path / f".out.{zombie.pid}.aaaa1111.tmp"
        from_reused = tmp_path / f".out.{newcomer.pid}.bbbb2222.tmp"
        for d in (from_zombie, from_reused):
            (d / "out").mkdir(parents=True)
        hour_ago = time.time() - 3600
        os.utime(from_reused, (hour_ago, hour_ago))
        with atomic_path(tmp_path / "out") as staged:
            staged.write_text("done")
        assert not from_zombie.exists() and not from_reused.exists()
    finally:
        newcomer.kill()
        newcomer.wait()
        zombie.wait()
