"""Reports in a real DVC repo: plots rendered in headless Chromium, leaderboard across exps."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest

from tests.e2e import copy_built
from tests.pipeline.conftest import run

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--virtual-time-budget=15000"]


@pytest.fixture
def repo(e2e_built, tmp_path):
    """A copy of the built project per test (any test runs alone, on any xdist worker)."""
    return copy_built(e2e_built, tmp_path / "project")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not installed (scripts/run-tests.sh installs it with apt-get)")


@pytest.mark.slow
def test_dvc_plots_render_in_a_browser(repo, tmp_path):
    browser = chromium()
    run(repo, "dvc", "plots", "show")
    page = (repo / "dvc_plots" / "index.html").resolve()
    assert "cdn.jsdelivr" not in page.read_text()  # offline template: no network needed
    shot = tmp_path / "plots.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--screenshot={shot}", "--window-size=1400,3000",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a blank page is a few KB
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    expected = ["results/eval/plots/confusion/sst.csv", "results/eval/plots/confusion/cfimdb.csv",
                "results/eval/plots/roc/para.csv", "results/eval/plots/scatter/sts.csv",
                "results/train/live/plots/metrics/dev/overall.tsv",
                "results/train/live/plots/metrics/train/loss/sst.tsv"]
    for title in expected:
        div = title.replace("/", "_").replace(".", "_")
        assert f'id="{div}"' in dom, title
        assert f">{title}</text>" in dom, title  # the plot's title, drawn as SVG text
    # vega-embed ran: every plot div got its class and a drawn SVG
    assert dom.count('class="vega-embed') >= len(expected)
    assert dom.count("<svg") >= dom.count('class="vega-embed')
    assert "false positive rate" in dom and "predicted" in dom  # axis titles, drawn


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_leaderboard_across_experiments(repo):
    own = read_csv(repo / "results/export/leaderboard_row.csv")
    assert len(own) == 1 and "sampler=round_robin" in own[0]["params"]
    # The Prefect sweep's three ablations (tests/flows/conftest.py): copies of the built
    # project share one DVC cache, so whichever test runs one of them first trains it.
    changes = {"anneal": ["sampler=anneal"], "cls": ["model.pooling=cls"],
               "linear-pair": ["model.pair_head=linear"]}
    for name, sets in changes.items():
        run(repo, "git", "checkout", "--", "params.yaml")  # each changes one thing
        run(repo, "dvc", "exp", "run", "-n", name, *[a for s in sets for a in ("-S", s)])
    run(repo, "git", "checkout", "--", "params.yaml")
    out = run(repo, "python", "-m", "pipeline", "leaderboard", "--out", "lb.csv")
    assert "3 experiments -> lb.csv" in out.stdout
    rows = read_csv(repo / "lb.csv")
    assert {r["name"]: r["params"] for r in rows} == {n: "; ".join(s) for n, s in changes.items()}
    overall = [float(r["overall"]) for r in rows]
    assert overall == sorted(overall, reverse=True)
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    base = next(r for r in shown if r["rev"] != "workspace")
    metrics = {e["name"]: e["revs"][0]["data"]["metrics"]["results/eval/metrics.json"]["data"]
               for e in base["experiments"]}
    for r in rows:
        m = metrics[r["name"]]
        assert float(r["overall"]) == m["overall"]
        assert float(r["sst.accuracy"]) == m["sst"]["accuracy"]
        assert float(r["sts.pearson"]) == m["sts"]["pearson"]
        assert float(r["para.roc_auc"]) == m["para"]["roc_auc"]
