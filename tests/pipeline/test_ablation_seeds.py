"""`ablate --seeds 2` runs every ablation once per seed as its own DVC experiment, and
`ablation-table` renders intervals from those experiments' dev predictions in DVC: no stage
runs, nothing is retrained, the workspace never held a prediction file."""

from __future__ import annotations

import csv
import sys

import pytest

from tests.e2e import e2e_params_dict
from tests.pipeline.conftest import make_repo, run

pytestmark = pytest.mark.slow

TINY_BUDGET = {"description": "synthetic data, tiny-random, 8 steps",
               "set": {"train.epochs": 1, "train.batches_per_epoch": 8}}


def _snapshot(repo):
    """Every file of the run cache and the workspace outside git's own folder."""
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(repo).parts[:1])


def test_two_ablations_two_seeds_then_the_table_from_dvc(tmp_path):
    params = e2e_params_dict(budgets={"tiny": TINY_BUDGET})  # its own, empty DVC cache
    repo = make_repo(tmp_path / "project", params)
    first = params["seed"]
    out = run(repo, sys.executable, "-m", "pipeline", "ablate", "--budget", "tiny",
              "--seeds", "2", "baseline", "anneal").stdout
    names = [f"{a}-tiny-s{s}" for s in (first, first + 1) for a in ("baseline", "anneal")]
    for name in names:
        assert f"== {name}: ran " in out, out[-2000:]
    # Another seed is other synthetic data: every stage from prepare on runs again.
    assert f"== baseline-tiny-s{first + 1}: ran prepare, tokenize" in out
    with (repo / "leaderboard.csv").open(newline="") as fh:
        board = {row["name"]: row for row in csv.DictReader(fh)}
    assert set(names) <= set(board)
    assert f"seed={first + 1}" in board[f"anneal-tiny-s{first + 1}"]["params"]

    assert not (repo / "results").exists()  # --temp runs: predictions only in DVC
    before = _snapshot(repo)
    table = run(repo, sys.executable, "-m", "pipeline", "ablation-table", "--budget", "tiny",
                "--resamples", "500", "--out", "bench/ablations.md")
    assert "Running stage" not in table.stdout + table.stderr
    after = _snapshot(repo)
    added = sorted(set(after) - set(before))
    assert added == ["bench/ablations-forest.png", "bench/ablations-intervals.csv",
                     "bench/ablations.md"], added

    text = (repo / "bench/ablations.md").read_text()
    assert f"Baseline over 2 seed(s) ({first}, {first + 1})" in text
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
