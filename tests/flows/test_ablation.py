"""Ablation -> `-S` overrides, their validation against params.yaml, and leaderboard rows."""

from __future__ import annotations

import typing

import pytest

from pipeline.ablation_form import (
    FIELD_KEYS,
    Ablation,
    AblationError,
    AdapterName,
    CombineName,
    PairHeadName,
    PoolingName,
    PrecisionName,
    SamplerName,
    SingleHeadName,
    apply_overrides,
    experiment_name,
    set_args,
)
from pipeline.ablations import sweep_plan
from pipeline.leaderboard import as_records, rows_from_exp_show, write_leaderboard
from tests.conftest import default_params_dict


def test_literals_match_the_registries():
    from pipeline.model.adapters import ADAPTERS
    from pipeline.model.heads import HEADS
    from pipeline.model.pooling import POOLINGS
    from pipeline.names import AUTO
    from pipeline.names import HEADS as HEAD_FITS
    from pipeline.precision import CHOICES
    from pipeline.train.combine import COMBINERS
    from pipeline.train.samplers import SAMPLERS

    assert set(typing.get_args(SamplerName)) == set(SAMPLERS)
    assert set(typing.get_args(PoolingName)) == set(POOLINGS)
    assert set(typing.get_args(PairHeadName)) == {AUTO, *HEADS}
    assert set(typing.get_args(SingleHeadName)) == {
        h for h in HEADS if not HEAD_FITS[h].needs_siamese}
    assert set(typing.get_args(AdapterName)) == set(ADAPTERS)
    assert set(typing.get_args(CombineName)) == set(COMBINERS)
    assert set(typing.get_args(PrecisionName)) == set(CHOICES)


def test_every_field_key_exists_in_params_yaml():
    params = default_params_dict()
    for key in FIELD_KEYS.values():
        node = params
        for part in key.split("."):
            assert part in node, key
            node = node[part]


def test_set_fields_become_dvc_set_args():
    ab = Ablation(sampler="anneal", lr=5e-5, mlm=True, data_dir=None,
                  overrides={"train.warmup_ratio": "0.2"})
    overrides = ab.to_overrides()
    assert overrides == {"sampler": "anneal", "train.lr": "5.0e-05", "mlm.enabled": "true",
                         "train.warmup_ratio": "0.2"}
    assert set_args({"sampler": "anneal"}) == ["-S", "sampler=anneal"]
    params = apply_overrides(default_params_dict(), overrides)
    assert params["train"]["lr"] == 5e-5 and params["mlm"]["enabled"] is True


@pytest.mark.parametrize("overrides, message", [
    ({"sampler": "anel"}, "unknown sampler 'anel'; valid choices: anneal, capped"),
    ({"model.pooling": "avg"}, "unknown pooling 'avg'"),
    ({"train.lr": "-1"}, "train.lr"),
    ({"train.nope": "1"}, "train.nope: unknown key"),
    ({"train.nope.deeper": "1"}, "'nope' is not in train"),
    ({"trian.lr": "1"}, "'trian' is not in the top level"),
    ({"ablations.x": "1"}, "not a pipeline param"),
])
def test_invalid_overrides_are_rejected(overrides, message):
    with pytest.raises(AblationError, match=message.replace("(", r"\(")):
        apply_overrides(default_params_dict(), overrides)


def test_typed_fields_have_bounds():
    with pytest.raises(ValueError):
        Ablation(sampler="anel")
    with pytest.raises(ValueError):
        Ablation(lr=0)
    with pytest.raises(ValueError):
        Ablation(unknown_field=1)


def test_experiment_names_are_readable():
    assert experiment_name({"sampler": "anneal", "train.lr": "5.0e-05"}) == \
        "sampler-anneal-lr-5.0e-05"
    assert experiment_name({"data.dir": "/a b/c"}) == "dir-a-b-c"
    assert experiment_name({}, "my run!") == "my-run"


def test_params_yaml_ablations_are_valid_overrides():
    params = default_params_dict()
    ablations = sweep_plan(params, None, None, None, None)
    assert len(ablations) >= 12
    for overrides in ablations.values():
        apply_overrides(params, overrides)


def test_missing_optional_keys_are_added_with_plus_plus():
    params = default_params_dict()
    args = set_args({"sampler": "anneal", "tasks.sts.head": "relu_cos5"}, params)
    assert args == ["-S", "sampler=anneal", "-S", "++tasks.sts.head=relu_cos5"]
    out = apply_overrides(params, {"tasks.sts.head": "relu_cos5"})
    assert out["tasks"]["sts"]["head"] == "relu_cos5"


def _rev(name, params, metrics):
    return {"rev": name, "name": name, "data": {
        "params": {"params.yaml": {"data": params}},
        "metrics": {"results/eval/metrics.json": {"data": metrics}}}}


def test_leaderboard_records_for_the_artifact(tmp_path):
    """The flows publish pipeline.leaderboard's rows: the artifact and the CSV agree."""
    base = {"sampler": "round_robin", "train": {"lr": 1e-4}, "ablations": {"a": {}}}
    baseline = _rev("abc123", base, {"overall": 0.5})
    baseline["experiments"] = [
        {"name": "low", "revs": [_rev("low", {**base, "sampler": "anneal"},
                                      {"overall": 0.4, "sst": {"accuracy": 0.3}})]},
        {"name": "high", "revs": [_rev("high", {**base, "train": {"lr": 5e-5}},
                                       {"overall": 0.7, "sst": {"accuracy": 0.6}})]},
        {"name": "failed", "revs": [{"rev": "f", "name": "failed", "data": {}}]},
    ]
    rows = rows_from_exp_show([{"rev": "workspace", "data": {}}, baseline])
    records = as_records(rows)
    assert [r["name"] for r in records] == ["high", "low"]  # a failed run has no metrics
    assert records[0] == {"name": "high", "params": "train.lr=5e-05", "overall": 0.7,
                          "sst.accuracy": 0.6}
    assert records[1]["params"] == "sampler=anneal"
    write_leaderboard(tmp_path / "leaderboard.csv", rows)
    lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert lines[0] == "name,params,overall,sst.accuracy" and len(lines) == 3


def test_weekly_sweep_defaults_to_a_real_data_budget_with_seeds(tmp_path):
    from pipeline.ablations import declared_budgets
    from pipeline.flows.serve import build_deployments

    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    weekly = next(d for d in build_deployments(tmp_path) if d.name == "weekly")
    budget = weekly.parameters["budget"]
    assert weekly.parameters["seeds"] == 3
    assert declared_budgets(default_params_dict())[budget].changes["data.source"] == "cs224n"


def test_leaderboard_records_carry_their_ablations_interval():
    from pipeline.flows.flows import with_intervals

    records = [{"name": "anneal-cpu-small-s13", "params": "", "overall": 0.6},
               {"name": "anneal-cpu-small-s14", "params": "", "overall": 0.5},
               {"name": "my-run", "params": "", "overall": 0.4}]
    intervals = {"anneal": {"seeds": 2, "delta_overall": 0.01,
                            "ci95_overall": "[-0.0100, +0.0300]"}}
    out = with_intervals(records, intervals, default_params_dict(), "cpu-small")
    assert out[0]["ablation"] == "anneal" and out[1]["ci95_overall"] == "[-0.0100, +0.0300]"
    assert out[2]["ablation"] is None and out[2]["ci95_overall"] is None
    assert with_intervals(records, {}, default_params_dict(), None) == records
