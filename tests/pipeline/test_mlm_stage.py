"""The mlm stage inside DVC: enabling it reruns mlm and what follows; a later train-only
change never reruns it; an mlm change invalidates it. Also on the real CS224N data."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e import copy_built
from tests.pipeline.conftest import changed_stages, run

# 40 steps; three passes so the preset's small corpus (~540 sentences, 17 batches) holds them
MLM_FAST = ["-S", "mlm.enabled=true", "-S", "mlm.max_steps=40", "-S", "mlm.epochs=3",
            "-S", "mlm.lr=1e-3", "-S", "mlm.device=cpu"]


@pytest.fixture
def repo(e2e_built, tmp_path):
    """A copy of the built project per test: its committed baseline runs without MLM."""
    return copy_built(e2e_built, tmp_path / "project")


def _mlm_metrics(repo):
    return json.loads((repo / "results/mlm/metrics.json").read_text())


@pytest.mark.slow
def test_mlm_experiment_then_train_change_keeps_mlm(repo):
    exp = run(repo, "dvc", "exp", "run", "-n", "mlm-on", *MLM_FAST)
    assert changed_stages(exp.stdout) == {"mlm", "train", "evaluate", "export"}
    metrics = _mlm_metrics(repo)
    assert metrics["enabled"] is True and metrics["steps"] == 40
    assert metrics["heldout_perplexity_after"] < metrics["heldout_perplexity_before"]
    manifest = json.loads((repo / "models/mlm/manifest.json").read_text())
    assert (repo / "models/mlm" / manifest["weights_dir"] / "model.safetensors").is_file()
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    baseline = next(r for r in shown if r["rev"] != "workspace")
    mlm_run = next(e for ex in baseline["experiments"] for e in ex["revs"]
                   if e.get("name") == "mlm-on")
    assert "heldout_perplexity_after" in mlm_run["data"]["metrics"]["results/mlm/metrics.json"][
        "data"]

    lr = run(repo, "dvc", "exp", "run", "-n", "mlm-lr", "-S", "train.lr=5e-4")
    assert changed_stages(lr.stdout) == {"train", "evaluate", "export"}
    assert "'mlm' didn't change" in lr.stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["mlm"]["enabled"] is True and params["train"]["lr"] == 5e-4

    # An mlm param change invalidates mlm itself (train and evaluate rerun on mlm's new
    # outputs, as the first experiment showed) and export, which records every param: DVC's
    # status, without paying for the runs.
    params["mlm"]["mask_prob"] = 0.2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(run(repo, "dvc", "status", "--json").stdout)
    changed = [{"changed deps": {"params.yaml": {"mlm": "modified"}}}]
    assert status == {"mlm": changed, "export": changed}


@pytest.mark.slow
@pytest.mark.realdata
def test_mlm_on_real_data(repo, cs224n_dir):
    run(repo, "dvc", "exp", "run", "-n", "mlm-real", "-S", "data.source=cs224n",
        "-S", f"data.dir={cs224n_dir}", "-S", "data.max_train_examples_per_task=300",
        "-S", "data.max_dev_examples_per_task=300", "-S", "train.epochs=1", *MLM_FAST)
    metrics = _mlm_metrics(repo)
    assert metrics["heldout_perplexity_after"] < metrics["heldout_perplexity_before"]
    assert metrics["corpus_train_sentences"] > 1000  # sst + both quora/sts sides + cfimdb
    assert len(list((repo / "predictions").glob("*-test-output.csv"))) == 4
