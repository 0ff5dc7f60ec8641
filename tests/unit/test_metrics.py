import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from pipeline.evaluate import overall_scores, task_metrics
from pipeline.model.multitask import TaskSpec

SST = TaskSpec("sst", "classification", False, 5, "linear", 0, 5)
PARA = TaskSpec("para", "classification", True, 2, "sbert", 0, 5)
STS = TaskSpec("sts", "regression", True, 1, "sbert", 0, 5)


def test_classification_metrics_match_sklearn():
    gold, pred = np.array([0, 1, 2, 2, 4]), np.array([0, 2, 2, 2, 4])
    m = task_metrics(SST, gold, pred)
    assert m["accuracy"] == skm.accuracy_score(gold, pred)
    assert m["macro_f1"] == pytest.approx(
        skm.f1_score(gold, pred, labels=range(5), average="macro", zero_division=0))


def test_binary_metrics_include_roc_auc():
    gold = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = task_metrics(PARA, gold, probs.argmax(1), probs)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(gold, probs[:, 1]))
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)


def test_regression_metrics_and_constant_predictions():
    gold, pred = np.array([0.0, 1.0, 3.0, 5.0]), np.array([0.5, 1.0, 2.5, 4.0])
    m = task_metrics(STS, gold, pred)
    assert m["pearson"] == pytest.approx(stats.pearsonr(gold, pred)[0])
    assert m["spearman"] == pytest.approx(stats.spearmanr(gold, pred)[0])
    with pytest.warns(UserWarning, match="constant"):
        assert task_metrics(STS, gold, np.full(4, 2.0))["pearson"] == 0.0


def test_overall_is_the_cs224n_formula_over_tasks_in_overall():
    specs = {"sst": SST, "para": PARA, "sts": STS}
    per = {"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.8}, "sts": {"pearson": 0.6}}
    o = overall_scores(specs, per, {"sst", "para", "sts"})
    assert o["overall"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert o["overall_mean"] == pytest.approx((0.5 + 0.8 + 0.6) / 3)
    only = overall_scores(specs, {"sst": {"accuracy": 0.4}}, {"para"})
    assert only["overall"] == pytest.approx(0.4)  # falls back to the tasks that were trained


def test_macro_f1_counts_a_class_absent_from_dev():
    # class 3 never occurs in gold or predictions: sklearn with labels=range(5) scores it 0
    gold, pred = np.array([0, 1, 2, 4, 4, 1]), np.array([0, 1, 1, 4, 2, 1])
    m = task_metrics(SST, gold, pred)
    expected = skm.f1_score(gold, pred, labels=range(5), average="macro", zero_division=0)
    assert m["macro_f1"] == pytest.approx(expected)
    # and differs from sklearn's default, which averages over the classes present only
    assert m["macro_f1"] != pytest.approx(skm.f1_score(gold, pred, average="macro"))


def test_binary_roc_auc_left_out_when_dev_has_one_class():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    m = task_metrics(PARA, np.array([1, 1]), probs.argmax(1), probs)
    assert "roc_auc" not in m and m["accuracy"] == 0.5
