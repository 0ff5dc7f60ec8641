"""Bad input never crashes the reader and never loses a line (issue 9, item 1).

Property-based: files built from valid CS224N rows with random corruptions (missing/extra
fields, unbalanced quotes, non-UTF-8 bytes, BOM, CRLF, empty sentences, bad labels, NaN,
duplicate ids) and plain random bytes. For every file the reader either raises a one-line
``UserError`` (bad header, empty file) or returns a result where kept + quarantined = lines
read = physical lines after the header; strict mode stops at exactly the first problem the
lenient mode records; a test-split line whose id is readable and new is always kept. Then
hand-written cases on lines taken from the real CS224N files, and the same accounting through
``prepare`` into ``report.json`` and ``rejected.parquet``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Params, TaskConfig
from pipeline.data.cs224n import read_task_file
from pipeline.data.prepare import prepare
from pipeline.errors import DataError, UserError
from tests.conftest import tiny_params_dict

SST = TaskConfig(type="classification", num_labels=5, pair=False)
PARA = TaskConfig(type="classification", num_labels=2, pair=True)
STS = TaskConfig(type="regression", pair=True)
CFG = {"sst": SST, "para": PARA, "sts": STS}
HEADERS = {
    ("sst", False): "\tid\tsentence\tsentiment", ("sst", True): "0\t\tid\tsentence",
    ("para", False): "\tid\tsentence1\tsentence2\tis_duplicate",
    ("para", True): "\tid\tsentence1\tsentence2",
    ("sts", False): "\tid\tsentence1\tsentence2\tsimilarity",
    ("sts", True): "\tid\tsentence1\tsentence2",
}
CORRUPTIONS = ["none", "drop_field", "extra_field", "open_quote", "latin1", "empty_sentence",
               "label_range", "label_text", "label_nan", "dup_id", "blank", "crlf", "no_id"]
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

words = st.text(alphabet=st.sampled_from("abcdefghij KLM,.!?'\"é"), min_size=1,
               max_size=20).filter(lambda s: s.strip())


def _row_fields(task: str, test: bool, i: int, a: str, b: str, label: str) -> list[str]:
    row_id = f"{i:025x}"
    texts = [a] if task == "sst" else [a, b]
    if test:
        return [str(i), f"{float(i)}", row_id, *texts] if task == "sst" else \
            [str(i), row_id, *texts]
    return [str(i), row_id, *texts, label]


def _quote(f: str) -> str:
    return '"' + f.replace('"', '""') + '"' if '"' in f or "\t" in f else f


@st.composite
def corrupted_file(draw: st.DrawFn) -> tuple[str, bool, bytes, list[str]]:
    """(task, is_test, file bytes, the corruption applied to each line after the header)."""
    task = draw(st.sampled_from(["sst", "para", "sts"]))
    test = draw(st.booleans())
    n = draw(st.integers(min_value=0, max_value=12))
    header = HEADERS[(task, test)].encode()
    if draw(st.booleans()):
        header = b"\xef\xbb\xbf" + header  # BOM
    lines, kinds = [header], []
    for i in range(n):
        kind = draw(st.sampled_from(CORRUPTIONS))
        label = {"sst": str(draw(st.integers(0, 4))), "para": draw(st.sampled_from(["0.0", "1.0"])),
                 "sts": str(draw(st.floats(0, 5, allow_nan=False)))}[task]
        fields = _row_fields(task, test, i, draw(words), draw(words), label)
        id_at = 2 if test and task == "sst" else 1
        text_at = id_at + 1
        if kind == "drop_field":
            fields.pop()
        elif kind == "extra_field":
            fields.append("extra")
        elif kind == "empty_sentence":
            fields[text_at] = ""
        elif kind == "label_range" and not test:
            fields[-1] = "7" if task != "sts" else "5.5"
        elif kind == "label_text" and not test:
            fields[-1] = "three"
        elif kind == "label_nan" and not test:
            fields[-1] = "nan"
        elif kind == "dup_id" and i > 0:
            fields[id_at] = f"{i - 1:025x}"
        elif kind == "no_id":
            fields[id_at] = ""
        line = "\t".join(_quote(f) for f in fields)
        if kind == "open_quote":
            parts = line.split("\t")
            parts[text_at] = '"' + parts[text_at].replace('"', "")
            line = "\t".join(parts)
        raw = line.encode()
        if kind == "latin1":
            raw += "caf\u00e9".encode("latin-1")
        elif kind == "blank":
            raw = b""
        elif kind == "crlf":
            raw += b"\r"
        lines.append(raw)
        kinds.append(kind)
    ends_blank = bool(kinds) and kinds[-1] == "blank"  # else it would be no line at all
    body = b"\n".join(lines) + (b"\n" if ends_blank or draw(st.booleans()) else b"")
    return task, test, body, kinds


def _read(path: Path, task: str, test: bool, strict: bool = False):
    return read_task_file(path, task=task, cfg=CFG[task], split="test" if test else "dev",
                          strict=strict, display_name=path.name)


@PROPERTY
@given(case=corrupted_file())
def test_every_line_is_kept_or_quarantined_and_strict_stops_at_the_first(tmp_path, case):
    task, test, body, kinds = case
    path = tmp_path / "f.csv"
    path.write_bytes(body)
    physical = len(body.split(b"\n")) - 1 - (1 if body.endswith(b"\n") else 0)
    res = _read(path, task, test)
    rep = res.report
    assert rep.lines_read == physical == len(kinds)
    assert rep.kept + rep.rejected == rep.lines_read
    assert len(res.rows) == rep.kept and len(res.rejected) == rep.rejected
    assert {r["line"] for r in res.rows}.isdisjoint({i.line for i in res.rejected})
    assert {r["line"] for r in res.rows} | {i.line for i in res.rejected} == \
        set(range(2, physical + 2))
    for kind, line in zip(kinds, range(2, physical + 2), strict=True):
        if kind in ("none", "crlf"):  # a clean row is always kept
            assert line in {r["line"] for r in res.rows}, (kind, line)
        if test and kind not in ("blank", "no_id", "dup_id"):  # its id is readable and new
            assert line in {r["line"] for r in res.rows}, (kind, line)
    problems = sorted([(i.line, i.field, i.reason) for i in res.rejected + res.recovered])
    if problems:
        with pytest.raises(DataError) as err:
            _read(path, task, test, strict=True)
        line, fld, reason = problems[0]
        assert str(err.value) == f"f.csv:{line}: field '{fld}': {reason}"
    else:
        assert len(_read(path, task, test, strict=True).rows) == rep.kept


@PROPERTY
@given(body=st.binary(max_size=300), task=st.sampled_from(["sst", "para", "sts"]),
       test=st.booleans())
def test_arbitrary_bytes_give_a_user_error_or_a_full_account(tmp_path, body, task, test):
    path = tmp_path / "junk.csv"
    path.write_bytes(HEADERS[(task, test)].encode() + b"\n" + body if body[:1] != b"!" else body)
    try:
        res = _read(path, task, test)
    except UserError as err:  # bad header or empty file: one line naming the file
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert res.report.kept + res.report.rejected == res.report.lines_read


@pytest.mark.parametrize("header", ["id,sentence,label", "\tname\ttext\tsentiment",
                                    "\tid\tsentence1\tsentiment", '"\tid\tsentence'])
def test_a_header_that_is_not_cs224n_names_file_line_and_field(tmp_path, header):
    path = tmp_path / "h.csv"
    path.write_text(header + "\n0\tx\ty\t1\n")
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}:1: "):
        read_task_file(path, task="para" if "sentence1" in header else "sst",
                       cfg=PARA if "sentence1" in header else SST, split="train")


@pytest.mark.parametrize("body", [b"", b"\n\n", b"   \r\n"])
def test_an_empty_file_is_a_user_error(tmp_path, body):
    path = tmp_path / "e.csv"
    path.write_bytes(body)
    with pytest.raises(UserError, match="file is empty"):
        read_task_file(path, task="sst", cfg=SST, split="train")


# --- hand-written cases on lines from the real CS224N files --------------------------------

def _real_lines(cs224n_dir: Path, name: str, n: int) -> list[bytes]:
    with open(cs224n_dir / name, "rb") as f:
        return [f.readline().rstrip(b"\n") for _ in range(n + 1)]


@pytest.mark.realdata
def test_real_quora_lines_with_each_corruption(cs224n_dir, tmp_path):
    header, *rows = _real_lines(cs224n_dir, "quora-train.csv", 10)
    bad = list(rows)
    bad[1] = bad[1].rsplit(b"\t", 1)[0]                       # missing label field
    bad[2] = bad[2] + b"\textra"                              # extra field
    bad[3] = bad[3].replace(b"\t", b'\t"', 2)                 # unbalanced quote
    bad[4] = bad[4] + b"\xff"                                 # non-UTF-8 byte
    bad[5] = bad[5].rsplit(b"\t", 1)[0] + b"\t2.0"            # label out of range
    bad[6] = bad[6].rsplit(b"\t", 1)[0] + b"\tNaN"            # NaN
    bad[7] = b"99\t" + rows[0].split(b"\t")[1] + b"\tq\tq\t0.0"  # duplicate id
    bad[8] = bad[8] + b"\r"                                   # CRLF: fine
    path = tmp_path / "quora-train.csv"
    path.write_bytes(b"\xef\xbb\xbf" + header + b"\n" + b"\n".join(bad) + b"\n")
    res = read_task_file(path, task="para", cfg=PARA, split="train", display_name=path.name)
    fields = {i.line: i.field for i in res.rejected}
    assert fields == {3: "line", 4: "line", 6: "line", 7: "label", 8: "label", 9: "id"}
    assert {r["line"] for r in res.rows} == {2, 5, 10, 11}  # line 5: quote recovered
    assert res.report.kept + res.report.rejected == res.report.lines_read == 10
    with pytest.raises(DataError, match=r"^quora-train\.csv:3: field 'line': expected 5"):
        read_task_file(path, task="para", cfg=PARA, split="train", strict=True,
                       display_name=path.name)


@pytest.mark.realdata
def test_real_test_student_lines_are_never_dropped(cs224n_dir, tmp_path):
    header, *rows = _real_lines(cs224n_dir, "ids-sst-test-student.csv", 6)
    bad = list(rows)
    bad[0] = bad[0].rsplit(b"\t", 1)[0]                       # sentence missing
    bad[1] = bad[1] + b"\textra\tfields"                      # extra fields
    bad[2] = bad[2].replace(b"\t", b'\t"', 3)                 # unbalanced quote
    bad[3] = bad[3] + b"\xe9\xff"                             # non-UTF-8 bytes
    bad[4] = bad[4].rsplit(b"\t", 1)[0] + b"\t"               # empty sentence
    path = tmp_path / "ids-sst-test-student.csv"
    path.write_bytes(header + b"\r\n" + b"\r\n".join(bad) + b"\r\n")
    res = read_task_file(path, task="sst", cfg=SST, split="test")
    ids = [r.split(b"\t")[2].decode() for r in rows]
    assert [r["id"] for r in res.rows] == ids
    assert res.report.rejected == 0 and res.report.recovered == 5


# --- through prepare: report.json and rejected.parquet account for every line per file -----

def test_prepare_report_accounts_for_every_line_per_file(tmp_path):
    params = Params.model_validate(tiny_params_dict(
        data={"synthetic": {"train_size": 40, "dev_size": 20, "test_size": 10}}))
    synth = prepare(params, tmp_path / "syn")
    assert synth.rejected == 0
    src = tmp_path / "raw"
    shutil.copytree(tmp_path / "syn" / "source", src)
    corrupt = {"ids-sst-dev.csv": b"5\tdeadbeef\t\t9\n\xff\xfe\n",
               "quora-train.csv": b'7\tabc\t"never closed\tq\t3.0\n\n',
               "sts-test-student.csv": b"8\tfeedface\n9\t\n"}
    for name, extra in corrupt.items():
        with open(src / name, "ab") as f:
            f.write(extra)
    raw = dict(tiny_params_dict(data={"source": "cs224n", "dir": str(src)}))
    params = Params.model_validate(raw)
    summary = prepare(params, tmp_path / "prepared")
    report = json.loads((tmp_path / "prepared" / "report.json").read_text())
    rejected = pq.read_table(tmp_path / "prepared" / "rejected.parquet").to_pylist()
    dropped = pq.read_table(tmp_path / "prepared" / "dropped.parquet").to_pylist()
    prepared = {(t, s): pq.read_table(tmp_path / "prepared" / t / f"{s}.parquet").to_pylist()
                for t in params.tasks for s in ("train", "dev", "test")}
    for entry in report["files"]:
        data = (src / entry["file"]).read_bytes()
        lines = len(data.split(b"\n")) - 1 - data.endswith(b"\n")  # after the header
        assert entry["lines_read"] == lines, entry["file"]
        n_dropped = entry["duplicate"] + entry["overlap_dev"] + entry["overlap_test"]
        assert entry["kept"] + entry["rejected"] + n_dropped == entry["lines_read"], entry["file"]
        assert entry["rejected"] == sum(r["file"] == entry["file"] for r in rejected)
        assert n_dropped == sum(r["file"] == entry["file"] for r in dropped)
        in_table = prepared[(entry["task"], entry["split"])]
        assert entry["kept"] == sum(r["file"] == entry["file"] for r in in_table)
    by_file = {e["file"]: e for e in report["files"]}
    assert by_file["ids-sst-dev.csv"]["rejected"] == 2
    assert by_file["quora-train.csv"]["rejected"] == 2
    assert by_file["sts-test-student.csv"]["rejected"] == 1  # blank id: nothing to predict
    test_ids = pq.read_table(tmp_path / "prepared" / "sts" / "test.parquet")["id"].to_pylist()
    assert "feedface" in test_ids
    assert summary.rejected == len(rejected) == report["totals"]["rejected"] == 5
    assert yaml.safe_dump(report)  # plain data, no objects
