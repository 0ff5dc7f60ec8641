"""Declared ablations and budgets: expansion into `-S` overrides, selection, and the table."""

from __future__ import annotations

import csv

import pytest

from pipeline.ablation_table import NOISE, render, verdict, write_ablation_table
from pipeline.ablations import (
    declared_ablations,
    declared_budgets,
    expand,
    run_name,
    select,
    split_experiment_name,
)
from pipeline.config import parse_params
from pipeline.flows.ablation import AblationError, apply_overrides
from pipeline.leaderboard import rows_from_exp_show
from tests.conftest import default_params_dict


def test_params_yaml_covers_the_four_reports():
    raw = default_params_dict()
    specs = declared_ablations(raw)
    reports = {s.report for n, s in specs.items() if s.report != "this project"}
    assert len(reports) == 4
    from_reports = [n for n, s in specs.items() if s.report != "this project"]
    assert len(from_reports) >= 12
    for name in from_reports:
        assert specs[name].description and specs[name].claim, name
    assert {"cpu-small", "cpu-long", "gpu-full"} <= set(declared_budgets(raw))


def test_every_ablation_is_valid_under_every_budget(tmp_path):
    raw = default_params_dict()
    for budget in [None, *declared_budgets(raw)]:
        for name in declared_ablations(raw):
            overrides = expand(raw, name, budget, tmp_path)
            params = parse_params(apply_overrides(raw, overrides))
            assert params.train.epochs >= (0 if name == "zero-shot" else 1), (name, budget)


def test_the_leaderboard_preset_validates_and_predicts_test():
    """cpu-long: the default recipe on every shipped file, full dev, test predictions, 5400
    steps (at most an hour of training on 2 cores), and the zero-shot floor beside it."""
    raw = default_params_dict()
    params = parse_params(apply_overrides(raw, expand(raw, "baseline", "cpu-long", None)))
    assert params.data.source == "cs224n" and params.data.dir == "data/cs224n"
    assert params.data.max_train_examples_per_task is None
    assert params.data.max_dev_examples_per_task is None
    assert params.evaluate.predict_test
    assert params.train.epochs * params.train.batches_per_epoch == 5400
    assert params.model.head_init == "zero_shot" and params.model.pair_head == "auto"
    assert params.train.lr < params.train.head_lr
    floor = parse_params(apply_overrides(raw, expand(raw, "zero-shot", "cpu-long", None)))
    assert floor.train.epochs == 0 and floor.evaluate.predict_test


def test_ablation_changes_win_over_the_budget(tmp_path):
    raw = default_params_dict()
    overrides = expand(raw, "frozen", "cpu-small", tmp_path)
    assert overrides["train.lr"] == "0.001" and overrides["model.freeze"] == "frozen"
    assert overrides["train.batches_per_epoch"] == "100"
    assert overrides["data.dir"] == str(tmp_path.resolve())  # a real-data budget gets the dir
    params = parse_params(apply_overrides(raw, overrides))
    assert params.train.lr == 1e-3 and params.data.source == "cs224n"


def test_smarter_lora_adapts_query_and_key_as_the_report(tmp_path):
    """The report: "fine-tune the key and query matrices W_q, W_k" (the default adds value)."""
    raw = default_params_dict()
    overrides = expand(raw, "lora", None, tmp_path)
    assert overrides["model.lora_targets"] == "[query, key]"  # a YAML list `-S` accepts
    params = parse_params(apply_overrides(raw, overrides))
    assert params.model.adapter == "lora" and params.model.lora_targets == ["query", "key"]
    assert parse_params(raw).model.lora_targets == ["query", "key", "value"]


def test_real_data_budget_reads_the_shipped_data_or_an_existing_data_dir(tmp_path):
    raw = default_params_dict()
    assert "data.dir" not in expand(raw, "anneal", "cpu-small", None)  # params' data/cs224n
    assert raw["data"]["dir"] == "data/cs224n"
    assert expand(raw, "anneal", "cpu-small", tmp_path)["data.dir"] == str(tmp_path.resolve())
    with pytest.raises(AblationError, match="data dir not found"):
        expand(raw, "anneal", "cpu-small", tmp_path / "missing")


@pytest.mark.parametrize("name, budget, message", [
    ("anel", None, "unknown ablation 'anel'; declared: amp, anneal"),
    ("anneal", "cpu-tiny", "unknown budget 'cpu-tiny'; declared: cpu-long, cpu-small"),
])
def test_unknown_names_list_the_declared_ones(name, budget, message):
    with pytest.raises(AblationError, match=message):
        expand(default_params_dict(), name, budget)


def test_a_bad_declared_change_fails_before_any_run():
    raw = default_params_dict()
    raw["ablations"]["typo"] = {"report": "r", "description": "d", "set": {"sampler": "anel"}}
    with pytest.raises(AblationError, match="(?s)ablation 'typo'.*unknown sampler 'anel'"):
        expand(raw, "typo", None)


def test_select_by_name_all_or_report():
    specs = declared_ablations(default_params_dict())
    assert select(specs, ["pal", "anneal", "pal"]) == ["pal", "anneal"]
    smarter = select(specs, [], report="smarter")
    assert set(smarter) == {"smart", "random-task", "exp-lr-decay", "lora", "bilstm-heads"}
    assert select(specs, [], everything=True) == list(specs)
    with pytest.raises(AblationError, match="reports: "):
        select(specs, [], report="no such report")
    with pytest.raises(AblationError, match="pass --all or --report"):
        select(specs, [])


def test_experiment_names_round_trip():
    names = set(declared_ablations(default_params_dict()))
    assert run_name("pal-lora-r2", "cpu-small") == "pal-lora-r2-cpu-small"
    assert split_experiment_name("pal-lora-r2-cpu-small", names, "cpu-small") == "pal-lora-r2"
    assert split_experiment_name("pal-lora-r2-cpu-long", names, "cpu-small") is None
    assert split_experiment_name("anneal-2", names, "cpu-small") is None


def _row(name, sst, para, sts, seconds=100.0):
    overall = (sst + para + (sts + 1) / 2) / 3
    return {"name": name, "params": "", "overall": f"{overall}", "sst.accuracy": f"{sst}",
            "para.accuracy": f"{para}", "sts.pearson": f"{sts}", "train_seconds": f"{seconds}"}


def test_verdict_follows_the_claimed_directions():
    base = _row("b", 0.40, 0.70, 0.30)
    better_sst = _row("x", 0.40 + 2 * NOISE, 0.70, 0.30)
    assert verdict({"sst": "up"}, better_sst, base) == "agree"
    assert verdict({"sst": "down"}, better_sst, base) == "disagree"
    assert verdict({"sst": "up", "para": "up"}, better_sst, base) == "partly"
    assert verdict({"para": "flat"}, better_sst, base) == "agree"  # within the noise margin
    assert verdict({}, better_sst, base) == "no direction claimed"


def test_table_groups_by_report_and_compares_with_the_baseline(tmp_path):
    rows = [_row("baseline-cpu-small", 0.40, 0.70, 0.30),
            _row("anneal-cpu-small", 0.45, 0.72, 0.35, 120.0),
            _row("smart-cpu-small", 0.30, 0.70, 0.20),
            _row("anneal-cpu-long", 0.9, 0.9, 0.9),     # another budget: not in the table
            _row("my-own-run", 0.9, 0.9, 0.9)]          # not a declared ablation
    path = tmp_path / "leaderboard.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "ablations.md"
    n = write_ablation_table(path, default_params_dict(), "cpu-small", out, "cmd")
    text = out.read_text()
    assert n == 2
    assert "## Multi-task Fine-tuning with BERT" in text
    assert "## SMARTer Multi-task Fine-tuning of BERT" in text
    anneal = next(line for line in text.splitlines() if line.startswith("| anneal |"))
    assert "| 0.450 | 0.720 | 0.350 |" in anneal and "| agree |" in anneal and "| 120 |" in anneal
    smart = next(line for line in text.splitlines() if line.startswith("| smart |"))
    assert "| agree |" in smart  # sst down, para flat, sts down: as the report claimed
    assert "0.900" not in text


def test_table_shows_the_zero_shot_floor_and_who_falls_below_it():
    raw = default_params_dict()
    base = _row("baseline-cpu-small", 0.40, 0.80, 0.85)
    floor = _row("zero-shot-cpu-small", 0.38, 0.78, 0.84, 0.0)
    worse = _row("anneal-cpu-small", 0.41, 0.70, 0.30)
    text, _ = render([base, floor, worse], raw, "cpu-small")
    assert ("Zero-shot floor (`zero-shot`: no training step): sst 0.380, para 0.780, sts 0.840. "
            "Baseline at or above it on every task.") in text
    anneal = next(line for line in text.splitlines() if line.startswith("| anneal |"))
    assert "| para, sts |" in anneal
    zero = next(line for line in text.splitlines() if line.startswith("| zero-shot |"))
    assert "| (floor) |" in zero
    text, _ = render([_row("baseline-cpu-small", 0.40, 0.70, 0.85), floor], raw, "cpu-small")
    assert "Baseline BELOW it on para." in text
    text, _ = render([base], raw, "cpu-small")
    assert "Zero-shot floor: not run" in text


def test_table_needs_the_baseline_run(tmp_path):
    with pytest.raises(Exception, match="no 'baseline-cpu-small' row"):
        render([_row("anneal-cpu-small", 0.4, 0.7, 0.3)], default_params_dict(), "cpu-small")


def test_leaderboard_rows_carry_stage_wall_times():
    base = {"sampler": "round_robin"}
    data = {"params": {"params.yaml": {"data": {**base, "sampler": "anneal"}}},
            "metrics": {"results/eval/metrics.json": {"data": {"overall": 0.5}},
                        "results/train/live/metrics.json": {"data": {"train_seconds": 12.5}},
                        "results/mlm/metrics.json": {"data": {"seconds": 3.0}}}}
    shown = [{"rev": "abc", "data": {"params": {"params.yaml": {"data": base}}},
              "experiments": [{"name": "anneal-x", "revs": [{"rev": "1", "data": data}]}]}]
    (row,) = rows_from_exp_show(shown)
    assert row.metrics == {"overall": 0.5, "train_seconds": 12.5, "mlm_seconds": 3.0}


def test_declared_entries_reject_unknown_fields():
    raw = default_params_dict()
    raw["ablations"]["x"] = {"report": "r", "description": "d", "sett": {}}
    with pytest.raises(Exception, match="ablations.x.sett"):
        parse_params(raw)


def test_disabled_task_is_left_out_of_every_stage():
    raw = default_params_dict()
    params = parse_params(apply_overrides(raw, {"tasks.cfimdb.enabled": "false"}))
    assert "cfimdb" not in params.tasks and set(params.tasks) == {"sst", "para", "sts"}



def test_sweep_plan_names_runs_by_budget_and_merges_its_changes(tmp_path):
    from pipeline.ablations import sweep_plan

    raw = default_params_dict()
    plan = sweep_plan(raw, ["anneal", "baseline"], None, "cpu-small", tmp_path)
    assert list(plan) == ["anneal-cpu-small", "baseline-cpu-small"]
    assert plan["anneal-cpu-small"]["sampler"] == "anneal"
    assert plan["baseline-cpu-small"]["train.batches_per_epoch"] == "100"
    assert "sampler" not in plan["baseline-cpu-small"]
    adhoc = sweep_plan(raw, None, {"lr": {"train.lr": 0.001}}, None, None)
    assert adhoc == {"lr": {"train.lr": "0.001"}}
    with pytest.raises(AblationError, match="unknown ablations \\['nope'\\]"):
        sweep_plan(raw, ["nope"], None, None, None)
    with pytest.raises(AblationError, match="unknown budget 'gpu'"):
        sweep_plan(raw, ["anneal"], None, "gpu", None)


def test_table_tallies_agreement_and_names_the_best_run():
    rows = [_row("baseline-cpu-small", 0.40, 0.70, 0.30),
            _row("anneal-cpu-small", 0.45, 0.72, 0.35),
            _row("lora-cpu-small", 0.45, 0.75, 0.40)]
    text, n = render(rows, default_params_dict(), "cpu-small")
    assert n == 2
    assert "- agree: 1 (anneal)" in text and "- disagree: 1 (lora)" in text
    assert "Highest dev overall under `cpu-small`: `lora`" in text
