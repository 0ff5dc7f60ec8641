"""para's train files (quora-train.csv + the optional quora-train-extra.csv) and the train rows
prepare drops: text that also occurs in dev/test (pairs in either order, normalised) and
repeats within train. Each drop is counted in report.json and listed in dropped.parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.config import parse_params
from pipeline.data.cs224n import write_cs224n_file
from pipeline.data.overlap import normalise
from pipeline.data.prepare import prepare
from pipeline.errors import UserError
from tests.conftest import default_params_dict, tiny_params_dict

PARA_PARAMS = default_params_dict()["tasks"]["para"]  # as declared in params.yaml


def _rows(prefix: str, pairs: list[tuple[str, str]]) -> list[dict[str, object]]:
    return [{"id": f"{prefix}{i:04d}", "text_a": a, "text_b": b, "label": float(i % 2)}
            for i, (a, b) in enumerate(pairs)]


TRAIN = _rows("tr", [("How do I learn Python?", "What is the best way to learn Python?"),
                     ("Is Paris big?", "How large is Paris?"),
                     ("Why is the sky blue?", "What makes the sky blue?")])
EXTRA = _rows("ex", [("How do I cook rice?", "What is the way to cook rice?"),
                     ("Can cats swim?", "Do cats like water?"),
                     ("how large is  PARIS?", "is paris big?")])  # repeats a TRAIN pair
DEV = _rows("dv", [("what is the best  way to learn PYTHON?", " how do i learn python? "),
                   ("Is Rome old?", "How old is Rome?")])
TEST = _rows("ts", [("Do cats like water?", "Can cats swim?"),  # an EXTRA pair, reversed
                    ("Who wrote Hamlet?", "Who is the author of Hamlet?")])


def _folder(tmp_path: Path, *, extra: bool = True) -> Path:
    data = tmp_path / "cs224n"
    files = {"quora-train.csv": TRAIN, "quora-dev.csv": DEV, "quora-test-student.csv": TEST}
    if extra:
        files["quora-train-extra.csv"] = EXTRA
    for name, rows in files.items():
        write_cs224n_file(data / name, rows, task_pair=True, label_column="is_duplicate",
                          with_labels="test" not in name)
    return data


def _prepare(tmp_path: Path, data: Path, para: dict[str, Any] | None = None,
             **data_params: Any) -> tuple[dict[str, Any], Path]:
    """prepare with para as the only task; returns report.json and the output folder."""
    raw = tiny_params_dict(data={"source": "cs224n", "dir": str(data), **data_params})
    raw["tasks"] = {"para": para if para is not None else PARA_PARAMS}
    out = tmp_path / "prepared"
    prepare(parse_params(raw), out)
    return json.loads((out / "report.json").read_text()), out


def _train_ids(out: Path) -> list[str]:
    return pq.read_table(out / "para" / "train.parquet")["id"].to_pylist()


def test_normalise_nfkc_casefold_whitespace():
    assert normalise("  Ｐｙｔｈｏｎ\u00a0 IS\tFun \n") == "python is fun"
    assert normalise("Straße") == normalise("STRASSE")


@pytest.mark.parametrize("para", [PARA_PARAMS, {"type": "classification", "num_labels": 2,
                                                "pair": True}],
                         ids=["declared-in-params.yaml", "built-in-names"])
def test_the_extra_quora_file_is_read_into_train(tmp_path, para):
    report, out = _prepare(tmp_path, _folder(tmp_path), para, drop_eval_overlap=False,
                           dedupe_train=False)
    ids = _train_ids(out)
    assert {"ex0000", "ex0001", "ex0002"} <= set(ids)
    assert len(ids) == len(TRAIN) + len(EXTRA)
    read = {f["file"] for f in report["files"] if f["split"] == "train"}
    assert read == {"quora-train.csv", "quora-train-extra.csv"}
    assert report["skipped_optional_files"] == []


def test_a_dev_pair_reversed_with_other_case_and_spacing_is_dropped_and_counted(tmp_path):
    report, out = _prepare(tmp_path, _folder(tmp_path))
    ids = _train_ids(out)
    assert "tr0000" not in ids  # its pair is in dev, reversed, other case and spacing
    assert "ex0001" not in ids  # its pair is in test, reversed
    assert "ex0002" not in ids  # repeats tr0001 (reversed, other case and spacing)
    assert {"tr0001", "tr0002", "ex0000"} == set(ids)
    assert report["dropped"]["para"] == {"duplicate": 1, "overlap_dev": 1, "overlap_test": 1}
    totals = report["totals"]
    assert (totals["dropped_duplicate"], totals["dropped_overlap_dev"],
            totals["dropped_overlap_test"]) == (1, 1, 1)
    by_file = {f["file"]: f for f in report["files"]}
    assert by_file["quora-train.csv"]["overlap_dev"] == 1
    assert by_file["quora-train.csv"]["kept"] == 2
    assert by_file["quora-train-extra.csv"]["overlap_test"] == 1
    assert by_file["quora-train-extra.csv"]["duplicate"] == 1
    dropped = {r["id"]: r for r in pq.read_table(out / "dropped.parquet").to_pylist()}
    assert set(dropped) == {"tr0000", "ex0001", "ex0002"}
    d = dropped["tr0000"]
    assert (d["file"], d["line"], d["kind"]) == ("quora-train.csv", 2, "overlap_dev")
    assert (d["matched_split"], d["matched_file"], d["matched_line"]) == ("dev", "quora-dev.csv",
                                                                          2)
    assert "quora-dev.csv:2" in d["reason"]
    assert dropped["ex0002"]["matched_file"] == "quora-train.csv"
    assert dropped["ex0002"]["matched_line"] == 3
    # dev and test rows are never dropped
    assert pq.read_table(out / "para" / "dev.parquet").num_rows == len(DEV)
    assert pq.read_table(out / "para" / "test.parquet").num_rows == len(TEST)


def test_the_drops_can_be_switched_off(tmp_path):
    report, out = _prepare(tmp_path, _folder(tmp_path), drop_eval_overlap=False,
                           dedupe_train=False)
    assert len(_train_ids(out)) == len(TRAIN) + len(EXTRA)
    assert report["dropped"]["para"] == {"duplicate": 0, "overlap_dev": 0, "overlap_test": 0}
    assert pq.read_table(out / "dropped.parquet").num_rows == 0


def test_a_missing_optional_file_is_recorded_not_an_error(tmp_path):
    report, out = _prepare(tmp_path, _folder(tmp_path, extra=False))
    assert report["skipped_optional_files"] == [
        {"task": "para", "split": "train", "file": "quora-train-extra.csv",
         "reason": "optional file not found in data.dir"}]
    assert [f["file"] for f in report["files"] if f["split"] == "train"] == ["quora-train.csv"]
    assert set(_train_ids(out)) == {"tr0001", "tr0002"}  # tr0000 overlaps dev


@pytest.mark.parametrize("para,missing", [
    (PARA_PARAMS, "quora-train.csv"),
    ({**PARA_PARAMS, "files": {"train": ["quora-train.csv", "more.csv"]}}, "more.csv"),
])
def test_a_missing_required_file_is_an_error_naming_it(tmp_path, para, missing):
    data = _folder(tmp_path)
    if missing == "quora-train.csv":
        (data / missing).unlink()
    with pytest.raises(UserError) as err:
        _prepare(tmp_path, data, para)
    assert str(err.value) == (f"data file not found: {data / missing} "
                              "(task 'para', split 'train')")
    assert not (tmp_path / "prepared").exists()


def test_a_partial_files_dict_keeps_the_built_in_dev_and_test(tmp_path):
    para = {**PARA_PARAMS, "files": {"train": ["quora-train-extra.csv"]}}
    report, out = _prepare(tmp_path, _folder(tmp_path), para)
    assert {(f["split"], f["file"]) for f in report["files"]} == {
        ("train", "quora-train-extra.csv"), ("dev", "quora-dev.csv"),
        ("test", "quora-test-student.csv")}
    assert set(_train_ids(out)) == {"ex0000", "ex0002"}  # ex0001 overlaps test


def test_an_id_in_both_train_files_stays_a_rejected_duplicate_id(tmp_path):
    """The reader's rule (ids are unique across a split's files) holds across the two files."""
    data = _folder(tmp_path)
    clash = [{**EXTRA[0], "id": "tr0002"}, *EXTRA[1:]]
    write_cs224n_file(data / "quora-train-extra.csv", clash, task_pair=True,
                      label_column="is_duplicate", with_labels=True)
    report, out = _prepare(tmp_path, data)
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    assert [(r["file"], r["line"], r["field"]) for r in rejected] == [
        ("quora-train-extra.csv", 2, "id")]
    assert "duplicate id tr0002 (first at quora-train.csv:4)" in rejected[0]["reason"]


def test_a_relative_data_dir_is_taken_from_root(tmp_path, monkeypatch):
    _folder(tmp_path)
    monkeypatch.chdir(tmp_path.parent)  # not where the data is
    raw = tiny_params_dict(data={"source": "cs224n", "dir": "cs224n"})
    raw["tasks"] = {"para": PARA_PARAMS}
    summary = prepare(parse_params(raw), tmp_path / "prepared", root=tmp_path)
    assert summary.rows["para"]["dev"] == len(DEV)


@pytest.mark.realdata
def test_real_data_reads_both_quora_train_files_and_counts_overlaps(cs224n_dir, tmp_path):
    report, out = _prepare(tmp_path, cs224n_dir)
    by_file = {f["file"]: f for f in report["files"]}
    print("\nreal para files:", json.dumps({n: {k: v for k, v in f.items()
                                                  if k != "recovered_lines"}
                                             for n, f in by_file.items()}, indent=1))
    print("real para dropped:", report["dropped"]["para"], "rows:", report["rows"]["para"])
    assert by_file["quora-train.csv"]["lines_read"] == 13507
    assert by_file["quora-train-extra.csv"]["lines_read"] == 21578
    assert report["dropped"]["para"] == {"duplicate": 8, "overlap_dev": 1, "overlap_test": 1}
    n_train = pq.read_table(out / "para" / "train.parquet").num_rows
    assert n_train == 13507 + 21578 - 10 == report["rows"]["para"]["train"]
    files = pq.read_table(out / "para" / "train.parquet")["file"].to_pylist()
    assert files.count("quora-train-extra.csv") == by_file["quora-train-extra.csv"]["kept"]
    for f in report["files"]:
        dropped = f["duplicate"] + f["overlap_dev"] + f["overlap_test"]
        assert f["kept"] + f["rejected"] + dropped == f["lines_read"], f["file"]
