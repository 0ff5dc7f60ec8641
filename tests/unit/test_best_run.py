"""benchmarks/best.json: read from the run's own files, never typed in."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from pipeline.best_run import build_record
from pipeline.errors import UserError


def _workspace(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for rel, obj in {
        "results/eval/metrics.json": {"sst": {"accuracy": 0.51234, "f1": 0.4},
                                      "para": {"accuracy": 0.871}, "sts": {"pearson": 0.8912},
                                      "overall": 0.7553},
        "results/train/live/metrics.json": {"train_seconds": 2900.4, "best_epoch": 2},
        "models/multitask/train_summary.json": {
            "steps": 600, "best_epoch": 2, "precision": "fp32",
            "average": {"epochs": [1, 2], "dev": {"overall": 0.75}},
            "wise_ft": {"alpha": 0.8, "dev": {"overall": 0.7553}},
            "history": [{"epoch": 1, "step": 300, "train_seconds": 1200.0,
                         "dev": {"sst": {"accuracy": 0.45}, "overall": 0.7}},
                        {"epoch": 2, "step": 600, "train_seconds": 2400.5,
                         "dev": {"sst": {"accuracy": 0.51234}, "overall": 0.7553}}]},
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(obj))
    (root / "predictions").mkdir()
    (root / "predictions/sst-test-output.csv").write_text("id,Predicted_Sentiment\na,1\nb,0\n")
    (root / "predictions/sst-dev-output.csv").write_text("id,Predicted_Sentiment\na,1\n")
    (root / "f.txt").write_text("x")
    subprocess.run(["git", "-C", str(root), "add", "f.txt"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "init"], check=True)
    return root


def test_record_holds_the_runs_scores_time_commit_and_test_files(tmp_path):
    root = _workspace(tmp_path)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], text=True,
                          capture_output=True, check=True).stdout.strip()
    rec = build_record(root, budget="cpu-long", experiment="baseline-cpu-long",
                       command="bash scripts/run-leaderboard.sh cpu-long",
                       overrides={"train.epochs": "2"}, description="d", wall_seconds=3333.3)
    assert rec["dev"] == {"sst": 0.5123, "para": 0.871, "sts": 0.8912, "overall": 0.7553}
    assert rec["commit"] == head and rec["changed_files"] == []
    assert rec["train_step_seconds"] == 2400.5 and rec["train_fit_seconds"] == 2900.4
    assert rec["steps"] == 600 and rec["wall_seconds"] == 3333
    assert rec["saved_model"] == {"averaged_epochs": [1, 2], "averaged_points": 2,
                                    "wise_ft_alpha": 0.8}
    assert [p["epoch"] for p in rec["curve"]] == [1, 2]
    assert rec["curve"][0]["dev"] == {"sst": 0.45, "overall": 0.7}
    body = (root / "predictions/sst-test-output.csv").read_bytes()
    assert rec["test_predictions"] == [{"path": "predictions/sst-test-output.csv", "ids": 2,
                                        "sha256": hashlib.sha256(body).hexdigest()}]
    assert rec["machine"]["precision"] == "fp32" and rec["machine"]["cpus_usable"] >= 1


def test_an_edited_tracked_file_is_listed_so_the_record_is_not_passed_off_as_head(tmp_path):
    root = _workspace(tmp_path)
    (root / "f.txt").write_text("changed")
    rec = build_record(root, budget="b", experiment="e", command="c", overrides={},
                       description="d", wall_seconds=None)
    assert rec["changed_files"] == ["f.txt"] and rec["wall_seconds"] is None


def test_no_run_or_no_test_files_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="results/eval/metrics.json"):
        build_record(tmp_path, budget="b", experiment="e", command="c", overrides={},
                     description="d", wall_seconds=None)
    root = _workspace(tmp_path / "w")
    (root / "predictions/sst-test-output.csv").unlink()
    with pytest.raises(UserError, match="predict_test"):
        build_record(root, budget="b", experiment="e", command="c", overrides={},
                     description="d", wall_seconds=None)


def test_record_best_command_writes_the_file(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    root = _workspace(tmp_path)
    (root / "params.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    monkeypatch.chdir(root)
    out = root / "best.json"
    assert main(["record-best", "--budget", "cpu-long", "--experiment", "baseline-cpu-long",
                 "--command", "bash scripts/run-leaderboard.sh cpu-long",
                 "--wall-seconds", "10", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["command"] == "bash scripts/run-leaderboard.sh cpu-long"
    assert rec["overrides"]["sampler"] == "temperature" and rec["wall_seconds"] == 10
    assert "sst       accuracy    0.5123" in capsys.readouterr().out
