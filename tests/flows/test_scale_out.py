"""Scale-out path of the README: two clones share experiments through a git remote and a local
folder DVC remote; the second clone lists the first's experiment and reuses its outputs."""

from __future__ import annotations

import json

import pytest

from tests.flows.conftest import copy_repo
from tests.pipeline.conftest import commit_all, run

pytestmark = pytest.mark.slow


def test_experiment_pushed_from_one_clone_is_pulled_into_another(built_repo, tmp_path):
    origin = tmp_path / "origin.git"
    run(tmp_path, "git", "init", "-q", "--bare", str(origin))
    a = copy_repo(built_repo, tmp_path / "a")
    run(a, "git", "remote", "add", "origin", str(origin))
    run(a, "dvc", "remote", "add", "-d", "shared", str(tmp_path / "dvc-remote"))
    commit_all(a, "shared DVC remote")
    run(a, "git", "push", "-q", "origin", "HEAD:refs/heads/main")
    run(a, "dvc", "exp", "run", "--temp", "-n", "shared-exp", "-S", "evaluate.batch_size=64")
    run(a, "dvc", "exp", "push", "origin", "shared-exp")

    b = tmp_path / "b"
    run(tmp_path, "git", "clone", "-q", "--branch", "main", str(origin), str(b))
    assert not (b / ".dvc" / "cache").exists()
    run(b, "dvc", "exp", "pull", "origin", "shared-exp")
    shown = json.loads(run(b, "dvc", "exp", "show", "--json").stdout)
    revs = {r["name"]: r for base in shown for e in base.get("experiments") or []
            for r in e["revs"]}
    metrics = revs["shared-exp"]["data"]["metrics"]["results/eval/metrics.json"]["data"]
    assert 0 < metrics["overall"] <= 1
    params = revs["shared-exp"]["data"]["params"]["params.yaml"]["data"]
    assert params["evaluate"]["batch_size"] == 64

    run(b, "dvc", "exp", "apply", "shared-exp")
    status = run(b, "dvc", "status").stdout
    assert status.strip() == "Data and pipelines are up to date.", status
    assert json.loads((b / "results/eval/metrics.json").read_text())["overall"] == \
        metrics["overall"]
