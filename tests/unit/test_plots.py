"""Plot data files: what `dvc plots` draws must be the dev predictions, exactly."""

import csv

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.model.multitask import TaskSpec
from pipeline.plots import DevResult, write_plots

SPECS = {"sst": TaskSpec("sst", "classification", False, 5, "linear", 0, 5),
         "para": TaskSpec("para", "classification", True, 2, "sbert", 0, 5),
         "sts": TaskSpec("sts", "regression", True, 1, "sbert", 0, 5)}


def rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_plot_files_hold_the_dev_predictions(tmp_path):
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    gold_para = np.array([0, 1, 1, 0])
    dev = {"sst": DevResult(np.array([0, 1, 4.0]), np.array([0, 2, 4]), None),
           "para": DevResult(gold_para, probs.argmax(1), probs),
           "sts": DevResult(np.array([0.5, 4.2]), np.array([1.25, 3.0]), None)}
    out = tmp_path / "plots"
    written = write_plots(out, SPECS, dev)
    assert {p.relative_to(out).as_posix() for p in written} == {
        "confusion/sst.csv", "confusion/para.csv", "roc/para.csv", "scatter/sts.csv"}
    assert rows(out / "confusion/sst.csv") == [{"actual": "0", "predicted": "0"},
                                               {"actual": "1", "predicted": "2"},
                                               {"actual": "4", "predicted": "4"}]
    assert rows(out / "scatter/sts.csv") == [{"actual": "0.5", "predicted": "1.25"},
                                             {"actual": "4.2", "predicted": "3.0"}]
    fpr, tpr, _ = skm.roc_curve(gold_para, probs[:, 1])
    roc = rows(out / "roc/para.csv")
    assert [float(r["fpr"]) for r in roc] == pytest.approx(fpr)
    assert [float(r["tpr"]) for r in roc] == pytest.approx(tpr)


def test_roc_skipped_when_dev_has_one_class_and_folders_always_exist(tmp_path):
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    out = tmp_path / "plots"
    write_plots(out, SPECS, {"para": DevResult(np.array([1, 1]), np.array([0, 1]), probs)})
    assert sorted(p.name for p in out.iterdir()) == ["confusion", "roc", "scatter"]
    assert not list((out / "roc").iterdir())
    assert (out / "confusion" / "para.csv").is_file()
    # a rerun replaces the folder whole: no stale file of a task that is gone
    write_plots(out, SPECS, {"sst": DevResult(np.array([0]), np.array([0]), None)})
    assert [p.name for p in (out / "confusion").iterdir()] == ["sst.csv"]
