"""`python -m pipeline ablate`: named ablations run as DVC experiments under a budget, once
per seed with ``--seeds``; a run whose params another experiment already ran (a rerun, or the
first seed of a seeded sweep after the plain run) is served from DVC's cache (no stage runs);
`ablation-table` renders intervals from the experiments' dev predictions in DVC: no stage
runs, nothing is retrained, the workspace never held a prediction file."""

from __future__ import annotations

import csv
import sys

import pytest

from tests.e2e import e2e_params_dict
from tests.pipeline.conftest import make_repo, run

pytestmark = pytest.mark.slow  # DVC experiments, each a fresh interpreter per stage

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


def _snapshot(repo):
    """Every file of the run cache and the workspace outside git's own folder."""
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(repo).parts[:1])


def ablate(repo, *args):
    return run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny",
               *args).stdout


def test_ablations_per_seed_cached_reruns_and_the_table_from_dvc(repo):
    first = ablate(repo, "baseline", "anneal")
    assert "== baseline-tiny: ran prepare, tokenize, mlm, train, evaluate, export" in first
    # The ablation differs only in the sampler: data stages come from the run cache.
    assert "== anneal-tiny: ran train, evaluate, export" in first
    board = _leaderboard(repo)
    assert "sampler=anneal" in board["anneal-tiny"]["params"]
    assert "train.batches_per_epoch=8" in board["baseline-tiny"]["params"]
    assert float(board["anneal-tiny"]["train_seconds"]) > 0

    again = ablate(repo, "anneal")
    assert "== anneal-tiny: served from DVC's cache (no stage ran)" in again
    assert "Running stage" not in again
    rerun = _leaderboard(repo)
    assert [n for n in rerun if n.startswith("anneal")] == ["anneal-tiny"]  # replaced, not added
    assert rerun["anneal-tiny"]["overall"] == board["anneal-tiny"]["overall"]

    seed = e2e_params_dict()["seed"]
    seeded = ablate(repo, "--seeds", "2", "baseline", "anneal")
    # The first seed is the params' own: the plain runs' params, so the cache serves them.
    for name in (f"baseline-tiny-s{seed}", f"anneal-tiny-s{seed}"):
        assert f"== {name}: served from DVC's cache (no stage ran)" in seeded, seeded[-2000:]
    # Another seed is other synthetic data: every stage from prepare on runs again.
    assert f"== baseline-tiny-s{seed + 1}: ran prepare, tokenize, mlm, train" in seeded
    assert f"== anneal-tiny-s{seed + 1}: ran train, evaluate, export" in seeded
    board = _leaderboard(repo)
    assert {f"{a}-tiny-s{s}" for s in (seed, seed + 1) for a in ("baseline", "anneal")} <= set(
        board)
    assert f"seed={seed + 1}" in board[f"anneal-tiny-s{seed + 1}"]["params"]

    assert not (repo / "results").exists()  # --temp runs: predictions only in DVC
    before = _snapshot(repo)
    table = run(repo, sys.executable, "-m", "pipeline", "ablation-table", "--budget", "tiny",
                "--resamples", "500", "--out", "bench/ablations.md")
    assert "Running stage" not in table.stdout + table.stderr
    added = sorted(set(_snapshot(repo)) - set(before))
    assert added == ["bench/ablations-forest.png", "bench/ablations-intervals.csv",
                     "bench/ablations.md"], added

    text = (repo / "bench/ablations.md").read_text()
    assert "## Multi-task Fine-tuning with BERT" in text
    # the plain run and the seeded one of the same seed count once
    assert f"Baseline over 2 seed(s) ({seed}, {seed + 1})" in text
    anneal = next(line for line in text.splitlines() if line.startswith("| anneal |"))
    cells = [c.strip() for c in anneal.split("|")]
    assert cells[3] == "2"  # seeds
    assert "[" in cells[8] and "]" in cells[8]  # Δ overall [95% CI]
    assert "Zero-shot floor: not run" in text
    with (repo / "bench/ablations-intervals.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    metrics = {r["metric"] for r in rows if r["ablation"] == "anneal"}
    assert {"sst", "para", "sts", "overall"} <= metrics
    for r in rows:
        assert float(r["low"]) <= float(r["delta"]) <= float(r["high"]), r
        assert r["seeds"] == "2"
    assert (repo / "bench/ablations-forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invalid_ablation_fails_before_any_dvc_work(repo):
    proc = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny", "anel",
               check=False)
    assert proc.returncode == 2
    assert "unknown ablation(s) anel; declared:" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "cpu-small",
               "--data-dir", str(repo / "missing"), "anneal", check=False)
    assert proc.returncode == 2 and "data dir not found" in proc.stderr
