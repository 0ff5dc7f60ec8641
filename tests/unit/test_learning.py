"""A tiny-random model trained on the synthetic default beats chance clearly on every task."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import parse_params
from pipeline.evaluate import evaluate_run
from pipeline.io import read_json
from pipeline.model.multitask import MultitaskModel
from pipeline.train.run import load_split, train
from tests.conftest import prepare_for_training, tiny_params_dict

# Chance: sst 0.2 (5 balanced classes), para 0.6 (majority class), cfimdb 0.5, sts r = 0.
THRESHOLDS = {"sst": ("accuracy", 0.6), "para": ("accuracy", 0.8), "cfimdb": ("accuracy", 0.8),
              "sts": ("pearson", 0.4)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("learn")
    params = parse_params(tiny_params_dict())
    prepare_for_training(params, work)
    result = train(params, work / "tok", work / "mlm", work / "model", work / "live")
    metrics = evaluate_run(work / "model", work / "tok", params.tasks, 64,
                           work / "metrics.json", work / "preds")
    return params, work, result, metrics


@pytest.mark.slow
def test_beats_chance_on_every_task(trained):
    _, _, _, metrics = trained
    for task, (metric, threshold) in THRESHOLDS.items():
        assert metrics[task][metric] >= threshold, (task, metrics[task])
    assert read_json(trained[1] / "metrics.json") == metrics


@pytest.mark.slow
def test_dvclive_logged_losses_and_dev_metrics(trained):
    live = trained[1] / "live"
    summary = read_json(live / "metrics.json")
    assert summary["best_epoch"] == trained[2].best_epoch
    plots = {p.relative_to(live / "plots" / "metrics").as_posix()
             for p in (live / "plots" / "metrics").rglob("*.tsv")}
    assert {"train/loss/sst.tsv", "dev/overall.tsv", "dev/sts/pearson.tsv"} <= plots
    losses = trained[2].history
    assert losses[-1]["train_loss"]["sst"] < losses[0]["train_loss"]["sst"]


@pytest.mark.slow
def test_saved_model_reloads_with_identical_outputs(trained):
    params, work, _, _ = trained
    model = MultitaskModel.load(work / "model")
    again = MultitaskModel.load(work / "model")
    dev = load_split(work / "tok", model.tasks, "dev")
    from pipeline.data.batching import collate

    for task, data in dev.items():
        batch = collate(data, np.arange(8), 0, params.tasks[task].type == "regression")
        batch.pop("labels")
        with torch.no_grad():
            assert torch.equal(model(task, batch), again(task, batch))
    # The saved weights are the in-memory best epoch's: evaluate (from disk) reproduces the
    # dev scores train computed before saving.
    best = trained[2].best_dev
    for task in THRESHOLDS:
        for k, v in best[task].items():
            assert trained[3][task][k] == pytest.approx(v, abs=1e-5), (task, k)
    assert (work / "model" / "model.safetensors").is_file()
    assert not list(Path(work / "model").glob("*.bin"))
