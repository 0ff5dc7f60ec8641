"""benchmarks/head_refit.py: the cross-validated choice of the probe's C and the head's accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.head_refit import choose_c, head_accuracy
from pipeline.model.head_init import HeadFeatures, fit_linear_probe
from pipeline.model.heads import HeadSpec, LinearHead


def _features(rows: int = 300, dim: int = 6, seed: int = 0, gap: float = 4.0) -> HeadFeatures:
    """Three classes ``gap`` apart along the first feature (unit noise), the rest noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=rows)
    x = rng.normal(size=(rows, dim))
    x[:, 0] += gap * labels
    return HeadFeatures(a=x.astype(np.float32), b=None, labels=labels)


def _head(dim: int = 6) -> LinearHead:
    return LinearHead(HeadSpec(hidden=dim, out=3, task_type="classification", siamese=False,
                               dropout=0.0, mlp_hidden=4, min_label=0, max_label=2))


def test_cross_validation_prefers_a_c_that_fits_over_one_that_regularises_to_chance() -> None:
    f = _features()
    c, scores = choose_c(f, grid=(1e-6, 1.0), folds=3)
    # at C 1e-6 every weight is ~0 and the probe predicts the majority class
    assert c == 1.0
    assert scores[1.0] > 0.9 > 0.5 > scores[1e-6]


def test_a_tie_goes_to_the_stronger_regularisation() -> None:
    # classes 20 noise sd apart: every fold is classified perfectly at either C
    c, scores = choose_c(_features(gap=20.0), grid=(10.0, 100.0), folds=3)
    assert scores[10.0] == scores[100.0] and c == 10.0


def test_head_accuracy_reads_the_head_as_the_probe_fitted_it() -> None:
    f, head = _features(), _head()
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    assert head_accuracy(head, f) == float((f.labels == 2).mean())  # class 2 for every row
    note = fit_linear_probe(head, f, c=1.0)
    reported = float(note.rsplit(" ", 1)[-1])
    assert abs(head_accuracy(head, f) - reported) < 1e-3
    assert head_accuracy(head, f) > 0.9


def test_the_script_refits_sst_only_and_records_both_arms(tmp_path, monkeypatch) -> None:
    """End to end on a tiny trained run: the saved arm repeats the run's own dev scores, the
    refit arm changes sst's head and no other task's score. The task-vector script opens the
    saved model the same way (``wise_ft_sweep.open_saved_model``): a vector of zero (the
    pretrained encoder as the "fine-tune") scores the saved model at every scale."""
    import json

    import yaml

    from benchmarks.head_refit import main
    from pipeline.config import parse_params
    from pipeline.io import read_json
    from pipeline.train.run import train
    from tests.conftest import prepare_for_training, tiny_params_dict

    raw = tiny_params_dict(train={"epochs": 1, "precision": "fp32", "lr": 1e-3},
                           data={"synthetic": {"train_size": 120, "dev_size": 30,
                                               "test_size": 10}})
    params = parse_params(raw)
    prepare_for_training(params, tmp_path)
    train(params, tmp_path / "tok", tmp_path / "mlm", tmp_path / "model", tmp_path / "live")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    main(["--task", "sst", "--model-dir", "model", "--tokenized", "tok", "--out", "r.json"])
    out = json.loads((tmp_path / "r.json").read_text())
    saved, refit = out["rows"]
    recorded = read_json(tmp_path / "model" / "train_summary.json")["best_dev"]["overall"]
    assert saved["overall"] == pytest.approx(recorded, abs=1e-6)
    assert out["other_tasks_unchanged"] and out["chosen_c"] in out["c_grid"]
    assert set(saved["headline"]) == set(refit["headline"]) and "sst" in saved["headline"]

    from benchmarks.task_vector import main as task_vector_main
    from pipeline.train.run import build_model

    build_model(params).encoder.save_pretrained(tmp_path / "pretrained")
    task_vector_main(["--sts-encoder", "pretrained", "--model-dir", "model", "--tokenized",
                      "tok", "--arith", "1", "--soup", "", "--out", "tv.json"])
    rows = json.loads((tmp_path / "tv.json").read_text())["rows"]
    assert [r["kind"] for r in rows] == ["saved", "arith"]
    assert rows[1]["headline"] == rows[0]["headline"] == saved["headline"]
