"""`python -m pipeline ablate`: a named ablation runs as a DVC experiment under a budget, and a
second run of the same ablation is served from DVC's cache (no stage runs)."""

from __future__ import annotations

import csv
import sys

import pytest

from tests.e2e import e2e_params_dict
from tests.pipeline.conftest import make_repo, run

pytestmark = pytest.mark.slow  # two DVC experiments, each a fresh interpreter per stage

TINY_BUDGET = {"description": "synthetic data, tiny-random, one short epoch",
               "set": {"train.epochs": 1, "train.batches_per_epoch": 8}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A fresh project with its own empty cache: the baseline's stages must all run."""
    params = e2e_params_dict(budgets={"tiny": TINY_BUDGET})
    return make_repo(tmp_path_factory.mktemp("dvc-ablate") / "project", params)


def _leaderboard(repo):
    with (repo / "leaderboard.csv").open(newline="") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


def test_named_ablation_runs_then_is_served_from_cache(repo):
    first = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny",
                "baseline", "anneal").stdout
    assert "== baseline-tiny: ran prepare, tokenize, mlm, train, evaluate, export" in first
    # The ablation differs only in the sampler: data stages come from the run cache.
    assert "== anneal-tiny: ran train, evaluate, export" in first
    board = _leaderboard(repo)
    assert "sampler=anneal" in board["anneal-tiny"]["params"]
    assert "train.batches_per_epoch=8" in board["baseline-tiny"]["params"]
    assert float(board["anneal-tiny"]["train_seconds"]) > 0

    again = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny",
                "anneal").stdout
    assert "== anneal-tiny: served from DVC's cache (no stage ran)" in again
    assert "Running stage" not in again
    rerun = _leaderboard(repo)
    assert [n for n in rerun if n.startswith("anneal")] == ["anneal-tiny"]  # replaced, not added
    assert rerun["anneal-tiny"]["overall"] == board["anneal-tiny"]["overall"]

    out = repo / "ablations.md"
    run(repo, sys.executable, "-m", "pipeline", "ablation-table", "--budget", "tiny",
        "--out", str(out))
    table = out.read_text()
    assert "## Multi-task Fine-tuning with BERT" in table
    assert "| anneal |" in table


def test_invalid_ablation_fails_before_any_dvc_work(repo):
    proc = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny", "anel",
               check=False)
    assert proc.returncode == 2
    assert "unknown ablation(s) anel; declared:" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "cpu-small",
               "--data-dir", str(repo / "missing"), "anneal", check=False)
    assert proc.returncode == 2 and "data dir not found" in proc.stderr
