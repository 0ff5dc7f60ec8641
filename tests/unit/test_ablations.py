"""Declared ablations and budgets: expansion into `-S` overrides, selection, and the table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml

from pipeline.ablation_form import AblationError, apply_overrides
from pipeline.ablation_table import SeedRun, collect, render, verdict
from pipeline.ablations import (
    declared_ablations,
    declared_budgets,
    expand,
    parse_run_name,
    run_name,
    seed_values,
    select,
    split_experiment_name,
    sweep_plan,
)
from pipeline.config import parse_params
from pipeline.exp_runs import ExpRun
from pipeline.intervals import TaskDev, compare
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


def _dotted(tree: dict[str, Any], key: str) -> Any:
    """The value at ``key``; a disabled task is left out of the params, so its
    ``tasks.<name>.enabled`` reads False."""
    parts = key.split(".")
    if parts[0] == "tasks" and parts[1] not in tree["tasks"]:
        assert parts[2:] == ["enabled"], key
        return False
    for part in parts:
        tree = tree[part]
    return tree


def _dotted_or(tree: dict[str, Any], key: str, missing: Any = KeyError) -> Any:
    try:
        return _dotted(tree, key)
    except KeyError:
        return missing


def test_every_ablation_is_valid_under_every_budget(tmp_path):
    """Under every budget (and none) each ablation's overrides validate, the params the
    stages would read hold every override with the ablation's own changes winning over the
    budget's, and every ablation trains something else than the baseline unless the budget
    already makes its changes."""
    raw = default_params_dict()
    specs = declared_ablations(raw)
    for budget in [None, *declared_budgets(raw)]:
        runs = {name: parse_params(apply_overrides(raw, expand(raw, name, budget, tmp_path)))
                .model_dump(mode="json") for name in specs}
        for name, spec in specs.items():
            params, where = runs[name], (name, budget)
            for key, value in expand(raw, name, budget, tmp_path).items():
                assert _dotted(params, key) == yaml.safe_load(value), (*where, key)
            for key, value in spec.changes.items():
                assert _dotted(params, key) == value, (*where, key)
            # Only an ablation whose every change the budget already makes (the baseline;
            # amp under gpu-full, which trains in bf16 anyway) may equal the baseline.
            # A key the baseline lacks (a per-task entry such as loss.label_smoothing.sst)
            # is a change.
            same = all(_dotted_or(runs["baseline"], k) == v for k, v in spec.changes.items())
            assert (params == runs["baseline"]) == same, where
        assert runs["zero-shot"]["train"]["epochs"] == 0


def test_the_leaderboard_preset_validates_and_predicts_test():
    """cpu-long: the default recipe on every shipped file, full dev, test predictions, 7200
    steps drawn by task size (at most an hour of training on 2 cores), the last three epochs
    averaged, and the zero-shot floor beside it (no epoch, so nothing averaged)."""
    raw = default_params_dict()
    params = parse_params(apply_overrides(raw, expand(raw, "baseline", "cpu-long", None)))
    assert params.data.source == "cs224n" and params.data.dir == "data/cs224n"
    assert params.data.max_train_examples_per_task is None
    assert params.data.max_dev_examples_per_task is None
    assert params.evaluate.predict_test
    assert params.train.epochs * params.train.batches_per_epoch == 7200
    assert params.train.head_lr == 1e-3 and params.train.wise_ft_alpha == 0.95
    assert params.train.average_last_epochs == 3  # epochs 4-6, then WiSE-FT
    assert params.train.average_points_per_epoch == 1  # the epoch ends (4: tried, rejected)
    assert params.sampler == "temperature" and params.train.sampler_temperature == 2.0
    assert params.model.head_init == "zero_shot" and params.model.pair_head == "auto"
    assert params.train.lr < params.train.head_lr
    floor = parse_params(apply_overrides(raw, expand(raw, "zero-shot", "cpu-long", None)))
    assert floor.train.epochs == 0 and floor.evaluate.predict_test


def test_ablation_changes_win_over_the_budget(tmp_path):
    raw = default_params_dict()
    overrides = expand(raw, "old-recipe", "gpu-full", tmp_path)  # the budget: lr 2e-5
    assert overrides["train.lr"] == "0.0001" and overrides["model.head_init"] == "random"
    assert overrides["train.epochs"] == "10"
    assert overrides["data.dir"] == str(tmp_path.resolve())  # a real-data budget gets the dir
    params = parse_params(apply_overrides(raw, overrides))
    assert params.train.lr == 1e-4 and params.train.head_lr is None
    assert params.data.source == "cs224n"


def test_the_gpu_budget_is_the_leaderboard_recipe_scaled():
    """gpu-full: cpu-long's sampler and head lr, on bert-base for the reports' 10 epochs."""
    raw = default_params_dict()
    long = parse_params(apply_overrides(raw, expand(raw, "baseline", "cpu-long", None)))
    gpu = parse_params(apply_overrides(raw, expand(raw, "baseline", "gpu-full", None)))
    assert gpu.encoder.name == "bert-base-uncased" and gpu.train.epochs == 10
    assert gpu.sampler == long.sampler == "temperature"
    assert gpu.train.head_lr == long.train.head_lr and gpu.train.lr < gpu.train.head_lr
    assert gpu.model.head_init == long.model.head_init == "zero_shot"
    assert gpu.train.precision == "bf16" and gpu.train.device == "cuda"


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


N_ROWS = 400


def _dev(seed, sst, para, sts_noise):
    """Dev rows of one run: exact sst / para accuracies, sts = gold + sts_noise * noise."""
    rng = np.random.default_rng(seed)  # the seed's data: the same rows for every ablation
    ids = np.array([f"r{i}" for i in range(N_ROWS)], dtype=object)
    out = {}
    for task, acc, classes in (("sst", sst, 5), ("para", para, 2)):
        gold = rng.integers(0, classes, N_ROWS).astype(float)
        pred = gold.copy()
        wrong = np.arange(N_ROWS) >= round(acc * N_ROWS)
        pred[wrong] = (gold[wrong] + 1) % classes
        out[task] = TaskDev(ids, gold, pred, "accuracy")
    gold, noise = rng.uniform(0, 5, N_ROWS), rng.normal(0, 1, N_ROWS)
    out["sts"] = TaskDev(ids, gold, gold + sts_noise * noise, "pearson")
    return out


def _runs(table, seeds=(13,)):
    """ablation -> seed -> SeedRun from ablation -> (sst acc, para acc, sts noise)."""
    return {name: {s: SeedRun(f"{name}-cpu-small", _dev(s, *scores), 100.0) for s in seeds}
            for name, scores in table.items()}


def _line(text, name):
    return next(line for line in text.splitlines() if line.startswith(f"| {name} |"))


def test_verdict_needs_an_interval_that_excludes_zero():
    runs = _runs({"baseline": (0.40, 0.70, 1.0), "anneal": (0.50, 0.70, 1.0)})
    cmp = compare({13: runs["baseline"][13].dev}, {13: runs["anneal"][13].dev},
                  ["sst", "para", "sts"], resamples=500)
    assert verdict({"sst": "up"}, cmp) == ("agree", "agree")
    assert verdict({"sst": "down"}, cmp) == ("disagree", "disagree")
    cell, bucket = verdict({"sst": "up", "para": "up"}, cmp)
    assert cell == "sst: agree; para: no detectable effect (±0.000)" and bucket == "partly"
    assert verdict({"para": "flat"}, cmp)[1] == "no detectable effect"
    assert verdict({}, cmp) == ("no direction claimed", "no direction claimed")


def test_table_groups_by_report_and_compares_with_the_baseline():
    runs = _runs({"baseline": (0.40, 0.70, 1.0), "anneal": (0.50, 0.80, 0.5),
                  "smart": (0.30, 0.70, 2.0)})
    table = render(runs, default_params_dict(), "cpu-small", "cmd", resamples=300)
    text = table.markdown
    assert table.count == 2
    assert "## Multi-task Fine-tuning with BERT" in text
    assert "## SMARTer Multi-task Fine-tuning of BERT" in text
    anneal = _line(text, "anneal")
    assert "| 1 | 0.500 | 0.800 |" in anneal
    assert anneal.endswith("| sst: agree; para: agree; sts: agree |")
    assert "| 100 |" in anneal
    smart = _line(text, "smart")  # sst down, para flat (no effect), sts down
    assert "sst: agree; para: no detectable effect (±0.000); sts: agree" in smart
    assert "Baseline over 1 seed(s) (13)" in text
    assert {r["metric"] for r in table.intervals} == {"sst", "para", "sts", "overall"}
    assert "- partly: 1 (smart)" in text and "- agree: 1 (anneal)" in text


def test_table_shows_the_zero_shot_floor_and_who_falls_below_it():
    raw = default_params_dict()
    base, floor = (0.40, 0.80, 0.5), (0.38, 0.78, 0.6)
    runs = _runs({"baseline": base, "zero-shot": floor, "anneal": (0.41, 0.70, 3.0)})
    text = render(runs, raw, "cpu-small", resamples=200).markdown
    assert "Zero-shot floor (`zero-shot`: no training step): sst 0.380, para 0.780, sts " in text
    assert "Baseline at or above it on every task." in text
    assert "| para, sts |" in _line(text, "anneal")
    assert "| (floor) |" in _line(text, "zero-shot")
    text = render(_runs({"baseline": (0.40, 0.70, 0.5), "zero-shot": floor}), raw,
                  "cpu-small", resamples=200).markdown
    assert "Baseline BELOW it on para." in text
    text = render(_runs({"baseline": base}), raw, "cpu-small", resamples=200).markdown
    assert "Zero-shot floor: not run" in text
    declared = [n for n in raw["ablations"] if n != "baseline"]
    missing = text.split("## Not run under `cpu-small` (")[1]
    assert missing.startswith(f"{len(declared)} of {len(declared)})")
    assert all(f"`{n}`" in missing for n in declared)
    ran = render(runs, raw, "cpu-small", resamples=200).markdown.split("## Not run")[1]
    assert "`anneal`" not in ran and "`zero-shot`" not in ran and "`pal`" in ran


def test_table_with_seeds_lists_the_baseline_spread():
    runs = _runs({"baseline": (0.40, 0.70, 1.0), "anneal": (0.45, 0.70, 1.0)},
                 seeds=(13, 14, 15))
    runs["baseline"][14] = SeedRun("baseline-cpu-small-s14", _dev(14, 0.50, 0.70, 1.0))
    text = render(runs, default_params_dict(), "cpu-small", resamples=300).markdown
    assert "Baseline over 3 seed(s) (13, 14, 15)" in text
    assert "sst acc 0.4333 ± 0.0577 (range 0.4000–0.5000)" in text
    assert _line(text, "anneal").split("|")[3].strip() == "3"


def test_the_highest_mean_counts_every_baseline_seed():
    """An ablation run at fewer seeds is not compared with the baseline's mean over only
    those seeds in the closing line (it is in its own Δ, paired by seed)."""
    runs = _runs({"baseline": (0.70, 0.70, 1.0)}, seeds=(13, 14, 15))
    runs["baseline"][13] = SeedRun("baseline-cpu-small-s13", _dev(13, 0.10, 0.70, 1.0))
    runs.update(_runs({"anneal": (0.40, 0.70, 1.0)}, seeds=(13,)))
    text = render(runs, default_params_dict(), "cpu-small", resamples=200).markdown
    assert "Highest mean dev overall under `cpu-small`: `baseline`" in text


def test_table_needs_the_baseline_run():
    with pytest.raises(Exception, match="no 'baseline-cpu-small' experiment"):
        render(_runs({"anneal": (0.4, 0.7, 1.0)}), default_params_dict(), "cpu-small")


def test_runs_are_grouped_by_ablation_and_seed():
    raw = default_params_dict()

    def exp(name, seed):
        return ExpRun(name, "0" * 40, {"seed": seed})

    grouped = collect([exp("baseline-cpu-small", 13), exp("baseline-cpu-small-s13", 13),
                       exp("baseline-cpu-small-s14", 14), exp("anneal-cpu-long", 13),
                       exp("my-own-run", 13)], raw, "cpu-small")
    assert {a: sorted(s) for a, s in grouped.items()} == {"baseline": [13, 14]}
    assert grouped["baseline"][13].name == "baseline-cpu-small-s13"


def test_seeded_runs_are_named_and_set_the_seed(tmp_path):
    raw = default_params_dict()
    assert seed_values(raw, 3) == [raw["seed"], raw["seed"] + 1, raw["seed"] + 2]
    with pytest.raises(AblationError, match="--seeds must be at least 1"):
        seed_values(raw, 0)
    assert run_name("anneal", "cpu-small", 14) == "anneal-cpu-small-s14"
    names = set(declared_ablations(raw))
    assert parse_run_name("anneal-cpu-small-s14", names, "cpu-small") == ("anneal", 14)
    assert parse_run_name("anneal-cpu-small", names, "cpu-small") == ("anneal", None)
    assert parse_run_name("anneal-cpu-long-s14", names, "cpu-small") is None
    assert expand(raw, "anneal", "cpu-small", tmp_path, 14)["seed"] == "14"
    assert "seed" not in expand(raw, "anneal", "cpu-small", tmp_path)
    plan = sweep_plan(raw, ["baseline", "anneal"], None, "tiny-none" and None, None, seeds=2)
    seed = raw["seed"]
    assert list(plan) == [f"baseline-s{seed}", f"anneal-s{seed}", f"baseline-s{seed + 1}",
                          f"anneal-s{seed + 1}"]
    assert plan[f"anneal-s{seed + 1}"] == {"sampler": "anneal", "seed": str(seed + 1)}
    assert list(sweep_plan(raw, ["anneal"], None, None, None, seeds=1)) == ["anneal"]


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


def test_a_frozen_ablation_must_set_the_rate_of_what_trains():
    """Frozen encoder + train.lr alone measured the zero-shot floor again (the heads stayed
    at head_lr): such a declaration fails, naming the param to set."""
    raw = default_params_dict()
    raw["ablations"]["x"] = {"report": "r", "description": "d",
                             "set": {"model.freeze": "frozen", "train.lr": 1.0e-3}}
    with pytest.raises(Exception, match="set train.head_lr"):
        parse_params(raw)
    raw["ablations"]["x"]["set"]["train.head_lr"] = 1.0e-3
    parse_params(raw)
    for name in ("frozen", "frozen-pal-lora"):
        assert default_params_dict()["ablations"][name]["set"]["train.head_lr"] == 1.0e-3


def test_a_run_made_before_a_catalogue_rule_stays_readable():
    """An experiment's params.yaml carries the ablation catalogue of its commit; a rule added
    later (the frozen head_lr one) must not make its dev rows unreadable, while its own
    pipeline params are still validated."""
    raw = default_params_dict()
    raw["ablations"]["frozen"]["set"] = {"model.freeze": "frozen", "train.lr": 1.0e-3}
    run = ExpRun("frozen-cpu-sweep-s13", "0" * 40, raw)
    assert set(run.trained_with().tasks) == {"sst", "para", "sts", "cfimdb"}
    assert run.trained_with().ablations == {}
    bad = ExpRun("x", "0" * 40, {**raw, "sampler": "anel"})
    with pytest.raises(Exception, match="(?s)params of experiment x.*unknown sampler .anel."):
        bad.trained_with()


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


def test_table_names_the_best_mean_overall():
    runs = _runs({"baseline": (0.40, 0.70, 1.0), "anneal": (0.45, 0.72, 1.0),
                  "lora": (0.45, 0.75, 0.5)})
    table = render(runs, default_params_dict(), "cpu-small", resamples=200)
    assert table.count == 2
    assert "Highest mean dev overall under `cpu-small`: `lora`" in table.markdown


def test_a_task_a_user_adds_gets_its_column_and_its_floor_check():
    """The columns come from the params' tasks in `overall`: a user's `nli` task is scored,
    compared, checked against the floor and named in the overall formula like sst."""
    raw = default_params_dict()
    raw["tasks"]["nli"] = {"type": "classification", "pair": True, "num_labels": 3,
                           "files": {"train": ["nli-train.csv"], "dev": ["nli-dev.csv"]}}

    def with_nli(runs, acc):
        for seeded in runs.values():
            for run in seeded.values():
                gold = np.arange(N_ROWS) % 3
                pred = np.where(np.arange(N_ROWS) < round(acc * N_ROWS), gold, (gold + 1) % 3)
                run.dev["nli"] = TaskDev(run.dev["sst"].ids, gold.astype(float),
                                         pred.astype(float), "accuracy")
        return runs

    runs = with_nli(_runs({"baseline": (0.40, 0.80, 0.5)}), 0.30)
    runs.update(with_nli(_runs({"zero-shot": (0.38, 0.78, 0.6)}), 0.50))
    runs.update(with_nli(_runs({"anneal": (0.40, 0.80, 0.5)}), 0.60))
    table = render(runs, raw, "cpu-small", resamples=200)
    text = table.markdown
    assert "| sst acc | para acc | sts r | nli acc | overall |" in text
    assert "| 0.400 | 0.800 |" in _line(text, "anneal") and "| 0.600 |" in _line(text, "anneal")
    assert "overall = mean of sst, para, (sts + 1) / 2, nli" in text
    assert "Zero-shot floor (`zero-shot`: no training step): sst 0.380, para 0.780, " in text
    assert "nli 0.500. Baseline BELOW it on nli." in text
    assert "Δ nli acc" in text
    assert {r["metric"] for r in table.intervals} >= {"nli", "overall"}
    cfimdb_free = default_params_dict()  # a task out of `overall` gets no column
    assert "cfimdb" not in render(_runs({"baseline": (0.4, 0.8, 0.5)}), cfimdb_free,
                                  "cpu-small", resamples=50).markdown.split("## ")[0]
