"""leaderboard.csv from `dvc exp show --json` output: changed params, flat metrics, order."""

import csv
import io
import json

import pytest

from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.leaderboard import changed_params, render_csv, rows_from_exp_show, run_row

BASE = {"seed": 13, "sampler": "round_robin", "train": {"lr": 0.001, "epochs": 2},
        "tasks": {"sst": {"num_labels": 5}}}


def rev(params, metrics, name=None):
    data = {"params": {"params.yaml": {"data": params}}}
    if metrics is not None:
        data["metrics"] = {"results/eval/metrics.json": {"data": metrics}}
    return {"rev": "abc", "name": name, "data": data}


def exp_show(*exps):
    base = rev(BASE, {"overall": 0.5, "sst": {"accuracy": 0.4}})
    base["rev"] = "0123abc"
    base["experiments"] = [{"name": n, "revs": [rev(p, m, n)]} for n, p, m in exps]
    workspace = rev(BASE, {"overall": 0.5})
    workspace["rev"] = "workspace"
    return [workspace, base]


def test_rows_name_changed_params_and_sort_by_overall():
    shown = exp_show(
        ("slow", {**BASE, "train": {"lr": 0.0001, "epochs": 2}},
         {"overall": 0.6, "overall_mean": 0.5, "sst": {"accuracy": 0.55, "macro_f1": 0.5}}),
        ("anneal", {**BASE, "sampler": "anneal"}, {"overall": 0.7, "sst": {"accuracy": 0.6}}),
        ("broken", {**BASE, "seed": 1}, None),  # failed run: no metrics
    )
    rows = rows_from_exp_show(shown)
    assert [r.name for r in rows] == ["anneal", "slow"]
    assert rows[0].params == "sampler=anneal"
    assert rows[1].params == "train.lr=0.0001"
    assert rows[1].metrics == {"overall": 0.6, "overall_mean": 0.5, "sst.accuracy": 0.55,
                               "sst.macro_f1": 0.5}
    table = list(csv.reader(io.StringIO(render_csv(rows))))
    assert table[0] == ["name", "params", "overall", "overall_mean", "sst.accuracy",
                        "sst.macro_f1"]
    assert table[1] == ["anneal", "sampler=anneal", "0.7", "", "0.6", ""]


def test_changed_params_lists_added_changed_and_removed_keys():
    new = {"seed": 13, "sampler": "round_robin", "train": {"lr": 0.001, "epochs": 3},
           "tasks": {"sst": {"num_labels": 5}, "x": {"pair": True}}}
    del new["sampler"]
    assert changed_params(BASE, new) == "sampler=<removed>; tasks.x.pair=true; train.epochs=3"
    assert changed_params(BASE, BASE) == ""


def test_own_row_lists_every_param():
    row = run_row("workspace", {"a": {"b": [1, 2]}, "c": None}, {"overall": 1})
    assert row.params == "a.b=[1, 2]; c=null" and row.metrics == {"overall": 1.0}


def test_bad_exp_show_output_is_a_user_error():
    with pytest.raises(UserError):
        rows_from_exp_show({"not": "a list"})  # type: ignore[arg-type]


def test_cli_writes_the_csv_from_saved_json(tmp_path, capsys):
    src = tmp_path / "shown.json"
    src.write_text(json.dumps(exp_show(("a", {**BASE, "seed": 2}, {"overall": 0.1}))))
    out = tmp_path / "lb.csv"
    assert main(["leaderboard", "--exp-json", str(src), "--out", str(out)]) == 0
    assert out.read_text() == "name,params,overall\na,seed=2,0.1\n"
    assert main(["leaderboard", "--exp-json", str(tmp_path / "nope.json")]) == 2
    assert "error: file not found" in capsys.readouterr().err
