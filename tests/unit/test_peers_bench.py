"""benchmarks/peers.py's pure parts: time to a threshold, the table, this project's curve from
best.json, the CSV rows, the seeded dev subset and the budget's learning-rate plan (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.peer_report import (
    curve_rows,
    plot_curves,
    project_entry,
    read_project_entry,
    render_table,
    time_to_threshold,
    write_curves_csv,
)
from benchmarks.peer_runs import CALIBRATION_STEPS, BudgetPlan
from benchmarks.peers import sample
from pipeline.best_run import dev_curve, primary_scores


def _point(step: int, seconds: float, **dev: float) -> dict:
    return {"step": step, "train_seconds": seconds, "dev": dev}


CURVE = [_point(0, 0.0, sts=0.80, para=0.70), _point(100, 50.0, sts=0.84, para=0.79),
         _point(200, 100.0, sts=0.86, para=0.78), _point(300, 150.0, sts=0.85, para=0.81)]


def test_time_to_threshold_is_the_first_scoring_at_or_above_it() -> None:
    assert time_to_threshold(CURVE, "sts", 0.85) == 100.0
    assert time_to_threshold(CURVE, "sts", 0.84) == 50.0  # equal counts as reached
    assert time_to_threshold(CURVE, "para", 0.80) == 150.0  # a dip after 50 s changes nothing
    assert time_to_threshold(CURVE, "sts", 0.80) == 0.0  # the untrained point counts
    assert time_to_threshold(CURVE, "sts", 0.87) is None
    assert time_to_threshold(CURVE, "sst", 0.45) is None  # never scored


def test_time_to_threshold_reads_the_curve_in_time_order() -> None:
    assert time_to_threshold(list(reversed(CURVE)), "sts", 0.85) == 100.0


def _best_json() -> dict:
    """A best.json as pipeline/best_run.py writes it (its own dev_curve and primary_scores)."""
    summary = {"history": [
        {"epoch": 0, "step": 0, "train_seconds": 0.0,
         "dev": {"sst": {"accuracy": 0.40}, "para": {"accuracy": 0.78},
                 "sts": {"pearson": 0.84}, "overall": 0.67}},
        {"epoch": 1, "step": 1200, "train_seconds": 480.5,
         "dev": {"sst": {"accuracy": 0.46}, "para": {"accuracy": 0.82},
                 "sts": {"pearson": 0.86}, "cfimdb": {"accuracy": 0.9}, "overall": 0.71}}]}
    final = {"sst": {"accuracy": 0.47}, "para": {"accuracy": 0.83}, "sts": {"pearson": 0.87},
             "overall": 0.72}
    return {"budget": "cpu-long", "command": "scripts/run-leaderboard.sh", "commit": "abc",
            "dev": primary_scores(final), "curve": dev_curve(summary)}


def test_project_entry_reads_best_json_curve_and_final_scores(tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    path.write_text(json.dumps(_best_json()))
    e = read_project_entry(path)
    assert e is not None
    assert e["label"] == "this project (cpu-long preset)"
    assert e["tasks"] == ["para", "sst", "sts"]
    assert [(p["step"], p["train_seconds"]) for p in e["curve"]] == [(0, 0.0), (1200, 480.5)]
    assert e["curve"][1]["dev"]["sst"] == 0.46
    assert e["final"]["dev"]["sts"] == 0.87
    assert time_to_threshold(e["curve"], "sst", 0.45) == 480.5


def test_project_entry_missing_file_or_curve(tmp_path: Path) -> None:
    assert read_project_entry(tmp_path / "best.json") is None
    with pytest.raises(ValueError, match="curve"):
        project_entry({"budget": "cpu-long", "dev": {"sst": 0.5}})


def _peer() -> dict:
    return {"name": "trainer-sts", "label": "HF Trainer, STS", "tasks": ["sts"],
            "curve": CURVE, "final": {"dev": {"sts": 0.8612}}}


def test_table_cells() -> None:
    project = project_entry(_best_json())
    stalled = {"name": "st-multi", "label": "ST", "tasks": ["sst", "para", "sts"],
               "curve": [_point(0, 0.0, sst=0.3, para=0.7, sts=0.8),
                         _point(10, 612.4, sst=0.4, para=0.75, sts=0.82)],
               "final": {"dev": {"sst": 0.41, "para": 0.755, "sts": 0.823}}}
    lines = render_table([project, _peer(), stalled]).splitlines()
    assert lines[0].startswith("| run | s to sts r 0.85 | s to para acc 0.80 | s to sst acc 0.45")
    assert len(lines) == 5
    assert lines[2] == ("| this project (cpu-long preset) | 480 s | 480 s | 480 s | 0.870 "
                        "| 0.830 | 0.470 | 480 |")
    assert lines[3] == ("| HF Trainer, STS | 100 s | not scored | not scored | 0.861 | — | — "
                        "| 150 |")
    assert lines[4] == ("| ST | not reached in 612 s | not reached in 612 s | "
                        "not reached in 612 s | 0.823 | 0.755 | 0.410 | 612 |")


def test_curve_rows_and_csv_keep_only_scored_tasks(tmp_path: Path) -> None:
    rows = curve_rows([_peer()])
    assert rows[0] == ("trainer-sts", "sts", 0.0, 0.8)
    assert {r[1] for r in rows} == {"sts"}  # para is in the points but not a task of the peer
    assert len(rows) == len(CURVE)
    write_curves_csv(tmp_path / "c.csv", [_peer()])
    text = (tmp_path / "c.csv").read_text().splitlines()
    assert text[0] == "peer,task,train_seconds,score"
    assert text[2] == "trainer-sts,sts,50.0,0.84"


def test_plot_writes_a_png(tmp_path: Path) -> None:
    plot_curves(tmp_path / "p.png", [project_entry(_best_json()), _peer()])
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dev_subset_is_seeded_and_in_file_order() -> None:
    cols = {"a": [f"s{i}" for i in range(100)], "b": None, "label": list(range(100))}
    one, two = sample(cols, 10, "0/sst/dev"), sample(cols, 10, "0/sst/dev")
    assert one == two and one["b"] is None
    assert one["label"] == sorted(one["label"]) and len(one["label"]) == 10
    assert [f"s{i}" for i in one["label"]] == one["a"]  # rows stay aligned
    assert sample(cols, 10, "1/sst/dev") != one
    assert sample(cols, None, "x") is cols and sample(cols, 500, "x") is cols


def test_budget_plan_warms_up_then_decays_to_zero_at_max_steps() -> None:
    plan = BudgetPlan(budget_s=600.0, max_steps=100)
    assert plan.total == 100
    assert plan.factor(0) == 0.0 and plan.factor(5) == 0.5 and plan.factor(10) == 1.0
    assert plan.factor(55) == pytest.approx(0.5) and plan.factor(100) == 0.0
    assert plan.factor(120) == 0.0


def test_budget_plan_follows_the_measured_speed() -> None:
    plan = BudgetPlan(budget_s=100.0)
    guess = plan.total
    plan.update(CALIBRATION_STEPS - 1, 1.0)
    assert plan.total == guess  # not trusted before the calibration steps
    plan.update(20, 10.0)  # 2 steps/s, 90 s left: 20 + 180 steps
    assert plan.total == pytest.approx(200.0)
    plan.update(150, 100.0)  # budget spent: the plan ends where training is
    assert plan.total == 150.0 and plan.factor(150) == 0.0
    capped = BudgetPlan(budget_s=100.0, max_steps=50)
    capped.update(20, 10.0)
    assert capped.total == 50
