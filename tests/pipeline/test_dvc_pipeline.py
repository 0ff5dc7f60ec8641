"""`dvc repro` and `dvc exp run` end to end in a temporary git repo (tiny-random model): a copy
of the session's built project (``tests/e2e.py``), whose first ``dvc repro`` is checked here."""

from __future__ import annotations

import csv
import json

import pytest

from tests.e2e import copy_built
from tests.pipeline.conftest import changed_stages, run

STAGES = ["prepare", "tokenize", "mlm", "train", "evaluate", "export"]


@pytest.fixture
def repo(e2e_built, tmp_path):
    """A copy of the built project per test (any test runs alone, on any xdist worker)."""
    return copy_built(e2e_built, tmp_path / "project")


@pytest.mark.slow
def test_repro_noop_and_sampler_experiment(e2e_built, repo):
    # the build's `dvc repro` ran on an empty cache: every stage ran
    assert changed_stages(e2e_built.repro_output) == set(STAGES)
    assert "is cached - skipping run" not in e2e_built.repro_output
    metrics = json.loads((repo / "results/eval/metrics.json").read_text())
    assert {"sst", "para", "sts", "cfimdb", "overall"} <= set(metrics)
    assert len(list((repo / "predictions").glob("*-output.csv"))) == 8

    again = run(repo, "dvc", "repro")
    assert changed_stages(again.stdout) == set()
    for stage in STAGES:
        assert f"'{stage}' didn't change" in again.stdout
    assert run(repo, "dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    exp = run(repo, "dvc", "exp", "run", "-n", "anneal", "-S", "sampler=anneal")
    assert changed_stages(exp.stdout) == {"train", "evaluate", "export"}

    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    # [workspace, baseline commit (with its experiments)]
    baseline = next(r for r in shown if r["rev"] != "workspace")
    runs = [baseline] + [e for ex in baseline.get("experiments") or [] for e in ex["revs"]]
    names = {r.get("name") for r in runs}
    assert "anneal" in names
    for r in runs:
        data = r["data"]
        assert data["metrics"]["results/eval/metrics.json"]["data"]["overall"] > 0
    samplers = {r["data"]["params"]["params.yaml"]["data"]["sampler"] for r in runs}
    assert samplers == {"round_robin", "anneal"}


def _test_student_ids(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    return [r[header.index("id")] for r in rows[1:]]


def _prediction_ids(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split(" , ")[0] for line in lines[1:]]


@pytest.mark.slow
@pytest.mark.realdata
def test_real_data_experiment_predicts_every_test_id(repo, cs224n_dir):
    run(repo, "dvc", "exp", "run", "-n", "real", "-S", "data.source=cs224n",
        "-S", f"data.dir={cs224n_dir}", "-S", "data.max_train_examples_per_task=300",
        "-S", "data.max_dev_examples_per_task=300", "-S", "train.epochs=1")
    files = {"sst": "ids-sst-test-student.csv", "para": "quora-test-student.csv",
             "sts": "sts-test-student.csv", "cfimdb": "ids-cfimdb-test-student.csv"}
    for task, name in files.items():
        expected = _test_student_ids(cs224n_dir / name)
        got = _prediction_ids(repo / "predictions" / f"{task}-test-output.csv")
        assert len(got) == len(expected) == len(set(got))
        assert set(got) == set(expected)
    totals = json.loads((repo / "data/prepared/report.json").read_text())["totals"]
    dropped = sum(totals[f"dropped_{k}"] for k in ("duplicate", "overlap_dev", "overlap_test"))
    assert totals["kept"] + totals["rejected"] + dropped == totals["lines_read"]


@pytest.mark.slow
def test_model_zoo_options_from_the_command_line(repo):
    exp = run(repo, "dvc", "exp", "run", "-n", "pal-cross", "-S", "model.adapter=pal",
              "-S", "model.pair_encoding=cross", "-S", "model.single_head=mlp",
              "-S", "train.epochs=1")
    assert {"train", "evaluate", "export"} <= changed_stages(exp.stdout)
    report = json.loads((repo / "models/multitask/param_report.json").read_text())
    assert report["adapter"] == "pal" and report["adapters_total"] > 0
    bad = run(repo, "dvc", "exp", "run", "-S", "model.adapter=palx", check=False)
    assert bad.returncode != 0
    out = bad.stdout + bad.stderr
    assert "unknown adapter 'palx'; valid choices: lora, none, pal, pal_lora" in out
    assert "Traceback" not in out
