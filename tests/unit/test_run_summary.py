"""The main command's closing summary: the dev table and the test files with their id counts."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.run_summary import summary


def test_summary_lists_each_task_overall_and_every_test_file(tmp_path, capsys):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({
        "sst": {"accuracy": 0.41, "f1": 0.3}, "para": {"accuracy": 0.8},
        "sts": {"pearson": 0.86, "mse": 1.1}, "overall": 0.717, "overall_mean": 0.69}))
    preds = tmp_path / "predictions"
    preds.mkdir()
    (preds / "sst-test-output.csv").write_text("id,Predicted_Sentiment\na,1\nb,2\nc,0\n")
    (preds / "sts-test-output.csv").write_text("id,Predicted_Similarity\nx,3.5\n")
    (preds / "sst-dev-output.csv").write_text("id,Predicted_Sentiment\na,1\n")
    assert main(["results", "--metrics", str(metrics), "--predictions", str(preds)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "sst       accuracy    0.4100" in out
    assert "sts       pearson     0.8600" in out
    assert any(line.startswith("overall") and "0.7170" in line for line in out)
    assert f"{preds / 'sst-test-output.csv'}  (3 ids)" in out
    assert f"{preds / 'sts-test-output.csv'}  (1 ids)" in out
    assert not any("dev-output" in line for line in out)


def test_summary_before_any_run_says_what_to_do(tmp_path):
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="run `dvc repro` first"):
        summary(tmp_path / "missing.json", tmp_path)
