"""`python -m pipeline predict` gives exactly evaluate's predictions, one by one or batched."""

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.cli import main
from pipeline.config import parse_params
from pipeline.evaluate import evaluate_run
from pipeline.io import read_json
from pipeline.train.run import train
from tests.conftest import prepare_for_training, tiny_params_dict

# fp32: exact agreement across batchings is an fp32 promise. Under bf16 autocast a row's
# scores move in the third decimal with the padding of the batch it lands in (README).
SMALL = {"train": {"epochs": 1, "precision": "fp32"},
         "data": {"synthetic": {"train_size": 200, "dev_size": 40, "test_size": 10}}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("predict")
    params = parse_params(tiny_params_dict(**SMALL))
    prepare_for_training(params, work)
    train(params, work / "tok", work / "mlm", work / "model", work / "live")
    evaluate_run(work / "model", work / "tok", params.tasks, 16, work / "metrics.json",
                 work / "preds")
    return params, work


def dev_rows(work, task):
    prepared = pq.read_table(work / "prepared" / task / "dev.parquet").to_pylist()
    evaluated = pq.read_table(work / "preds" / f"{task}-dev.parquet").to_pylist()
    assert [r["id"] for r in prepared] == [r["id"] for r in evaluated]
    return prepared, evaluated


@pytest.mark.slow
def test_model_folder_holds_tokenizer_and_max_length(trained):
    params, work = trained
    assert (work / "model" / "tokenizer" / "tokenizer.json").is_file()
    assert read_json(work / "model" / "inference.json")["max_length"] == params.tokenize.max_length
    # The precision as set (auto: resolved again where the model is used) and as it ran.
    from pipeline.precision import resolve_precision

    assert read_json(work / "model" / "inference.json")["precision"] == params.train.precision
    ran = resolve_precision(params.train.precision, torch.device("cpu")).name
    assert read_json(work / "model" / "train_summary.json")["precision"] == ran


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sst", "para", "sts"])
def test_single_examples_match_evaluate(trained, task, capsys):
    _, work = trained
    prepared, evaluated = dev_rows(work, task)
    for row, ev in list(zip(prepared, evaluated, strict=True))[:4]:
        texts = [row["text_a"]] + ([row["text_b"]] if task != "sst" else [])
        assert main(["predict", "--model", str(work / "model"), "--task", task, *texts]) == 0
        out = capsys.readouterr().out.strip()
        if task == "sts":
            assert out == f"sts: score {ev['prediction']:.4f}"
        else:
            assert out.startswith(f"{task}: label {ev['prediction']}  (probabilities 0=")
            shown = [float(x.split("=")[1]) for x in out.split("(probabilities ")[1][:-1].split()]
            assert shown == pytest.approx(ev["probabilities"], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("task,sep", [("sst", "\t"), ("para", ","), ("sts", "\t")])
def test_batch_file_matches_evaluate(trained, task, sep, tmp_path):
    _, work = trained
    prepared, evaluated = dev_rows(work, task)
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        pair = task != "sst"
        w.writerow(["id", "sentence1", "sentence2"] if pair else ["id", "sentence"])
        for r in prepared:
            w.writerow([r["id"], r["text_a"], r["text_b"]] if pair else [r["id"], r["text_a"]])
    assert main(["predict", "--model", str(work / "model"), "--task", task,
                 "--input", str(src), "--output", str(out)]) == 0
    with out.open(newline="") as f:
        got = list(csv.DictReader(f))
    assert [g["id"] for g in got] == [e["id"] for e in evaluated]
    if task == "sts":
        assert [float(g["prediction"]) for g in got] == pytest.approx(
            [e["prediction"] for e in evaluated], abs=1e-5)
    else:
        assert [int(g["prediction"]) for g in got] == [e["prediction"] for e in evaluated]
        probs = np.array([[float(g[f"p_{c}"]) for c in range(len(evaluated[0]["probabilities"]))]
                          for g in got])
        assert probs == pytest.approx(np.array([e["probabilities"] for e in evaluated]),
                                      abs=1e-5)


@pytest.mark.slow
def test_user_errors_print_one_line_and_exit_2(trained, tmp_path, capsys):
    _, work = trained
    model = str(work / "model")
    cases = [
        (["--model", str(tmp_path / "none"), "--task", "sst", "x"], "no trained model in"),
        (["--model", model, "--task", "nli", "x"], "unknown task 'nli'; this model has: sst"),
        (["--model", model, "--task", "para", "only one"], "takes 2 sentence(s), got 1"),
        (["--model", model, "--task", "sst", "--input", str(tmp_path / "missing.csv"),
          "--output", str(tmp_path / "o.csv")], "input file not found"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,hello\n")
    cases.append((["--model", model, "--task", "sst", "--input", str(bad), "--output",
                   str(tmp_path / "o.csv")], "missing column(s) sentence"))
    for args, message in cases:
        assert main(["predict", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_tasks_absent_from_config_are_absent_from_metrics(trained, tmp_path):
    params, work = trained
    subset = {t: params.tasks[t] for t in ("sst", "sts")}
    metrics = evaluate_run(work / "model", work / "tok", subset, 16, tmp_path / "m.json",
                           tmp_path / "preds", tmp_path / "plots")
    assert set(read_json(tmp_path / "m.json")) == {"sst", "sts", "overall", "overall_mean"}
    assert metrics["overall"] == pytest.approx(
        (metrics["sst"]["accuracy"] + (metrics["sts"]["pearson"] + 1) / 2) / 2)
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == [
        "sst-dev.parquet", "sst-test.parquet", "sts-dev.parquet", "sts-test.parquet"]
    assert [p.name for p in (tmp_path / "plots" / "confusion").iterdir()] == ["sst.csv"]


@pytest.mark.slow
def test_dev_only_evaluation_skips_test_and_export_follows(trained, tmp_path):
    """evaluate.predict_test=false (ablation sweeps): same dev metrics, no test files."""
    from pipeline.export import export_all

    params, work = trained
    metrics = evaluate_run(work / "model", work / "tok", params.tasks, 16, tmp_path / "m.json",
                           tmp_path / "preds", predict_test=False)
    assert metrics == read_json(work / "metrics.json")
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == [
        f"{t}-dev.parquet" for t in sorted(params.tasks)]
    report = export_all(tmp_path / "preds", work / "prepared",
                        {t: c.type for t, c in params.tasks.items()}, tmp_path / "out",
                        tmp_path / "report.json")
    assert sorted(report["files"]) == [f"{t}-dev-output.csv" for t in sorted(params.tasks)]
