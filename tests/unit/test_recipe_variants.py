"""benchmarks/recipe_variants.py's parts that decide what runs: the variant syntax, the params
each variant trains with, which variants share prepared data, and the table (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.recipe_variants import data_folder, markdown, parse_variant, variant_params
from pipeline.ablation_form import AblationError


def test_a_variant_is_a_name_an_optional_budget_and_changes():
    assert parse_variant("ref=cpu-long") == ("ref", "cpu-long", {})
    assert parse_variant("t5=cpu-long:train.sampler_temperature=5, train.lr=2e-5") == (
        "t5", "cpu-long", {"train.sampler_temperature": "5", "train.lr": "2e-5"})
    assert parse_variant("plain=:sampler=anneal") == ("plain", None, {"sampler": "anneal"})
    with pytest.raises(SystemExit, match="'train.lr' is not key=value"):
        parse_variant("x=cpu-long:train.lr")
    with pytest.raises(SystemExit, match="must be letters"):
        parse_variant("a-b=cpu-long")


def test_changes_win_over_the_budget_and_bad_keys_fail_before_any_run(tmp_path: Path):
    p = variant_params("cpu-long", {"train.sampler_temperature": "5"}, tmp_path)
    assert p["train"]["batches_per_epoch"] == 1200 and p["sampler"] == "temperature"
    assert p["train"]["sampler_temperature"] == 5 and p["data"]["dir"] == str(tmp_path)
    assert "ablations" not in p and "budgets" not in p
    with pytest.raises(AblationError, match="train.no_such_knob"):
        variant_params("cpu-long", {"train.no_such_knob": "1"}, tmp_path)


def test_variants_share_prepared_data_only_when_their_data_params_agree(tmp_path: Path):
    base = variant_params("cpu-long", {}, tmp_path)
    other_lr = variant_params("cpu-long", {"train.lr": "2e-5"}, tmp_path)
    longer = variant_params("cpu-long", {"tokenize.max_length": "128"}, tmp_path)
    assert data_folder(tmp_path, base) == data_folder(tmp_path, other_lr)
    assert data_folder(tmp_path, base) != data_folder(tmp_path, longer)


def test_the_table_has_a_row_per_variant_and_marks_failures():
    ok = {"name": "ref", "overrides": "budget=cpu-long", "seconds": {"train": 61.4},
          "dev": {"sst": 0.4812, "para": 0.8431, "sts": 0.8722, "overall": 0.75},
          "curve": [{"dev": {"overall": 0.7269}}, {"dev": {"overall": 0.745}}]}
    bad = {"name": "t5", "overrides": "budget=cpu-long", "error": "stage train failed"}
    rows = markdown([ok, bad]).splitlines()
    assert rows[2] == ("| ref | budget=cpu-long | 61 | 0.481 | 0.843 | 0.872 |  | 0.750 | "
                       "0.7269 0.7450 |")
    assert rows[3].startswith("| t5 | budget=cpu-long | failed |")
