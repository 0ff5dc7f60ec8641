"""The CS224N reader: nothing swallowed, nothing dropped silently, test rows kept."""

from pathlib import Path

import pytest

from pipeline.config import TaskConfig
from pipeline.data.cs224n import read_task_file
from pipeline.errors import DataError, UserError

PARA = TaskConfig(type="classification", num_labels=2, pair=True)
SST = TaskConfig(type="classification", num_labels=5, pair=False)
STS = TaskConfig(type="regression", pair=True)

QUORA_HEADER = "\tid\tsentence1\tsentence2\tis_duplicate\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_unclosed_quote_does_not_swallow_following_rows(tmp_path):
    body = (QUORA_HEADER
            + "0\tid0\tHow do I learn?\tHow can I learn?\t1.0\n"
            + '1\tid1\t"What is a ""good"" book?\tWhich book is good?\t0.0\n'  # never closes
            + "2\tid2\tWhere is Paris?\tWhat is Paris?\t0.0\n"
            + "3\tid3\tIs it cold?\tIs it hot?\t0.0\n")
    res = read_task_file(write(tmp_path, "q.csv", body), task="para", cfg=PARA, split="train")
    assert [r["id"] for r in res.rows] == ["id0", "id1", "id2", "id3"]
    assert res.rows[2]["text_a"] == "Where is Paris?"
    assert res.recovered[0].line == 3 and "quote" in res.recovered[0].reason
    assert res.report.lines_read == 4 and res.report.kept == 4


def test_bad_rows_land_in_quarantine_with_line_and_field(tmp_path):
    body = ("\tid\tsentence\tsentiment\n"
            "0\ta1\t good film .\t3\n"
            "1\ta2\t bad film .\t7\n"          # class out of range
            "2\ta3\t odd film .\tthree\n"      # not a number
            "3\ta4\t\t2\n"                     # empty sentence
            "4\ta1\t again .\t1\n"             # duplicate id
            "5\ta6\tonly two fields\n"         # missing field
            "\n"                               # empty line
            "7\ta8\t fine .\tnan\n")           # NaN label
    res = read_task_file(write(tmp_path, "s.csv", body), task="sst", cfg=SST, split="dev")
    assert [r["id"] for r in res.rows] == ["a1"]
    got = {(i.line, i.field) for i in res.rejected}
    assert got == {(3, "label"), (4, "label"), (5, "sentence"), (6, "id"), (7, "line"),
                   (8, "line"), (9, "label")}
    assert all(i.raw is not None for i in res.rejected)
    assert res.report.kept + res.report.rejected == res.report.lines_read == 8


def test_test_split_rows_are_never_dropped_when_the_id_is_there(tmp_path):
    body = ("0\t\tid\tsentence\n"
            "1\t0.0\tt1\t fine .\n"
            "2\t1.0\tt2\n"                   # sentence missing entirely
            "3\t2.0\tt3\t\n")                # empty sentence
    res = read_task_file(write(tmp_path, "t.csv", body), task="sst", cfg=SST, split="test")
    assert [r["id"] for r in res.rows] == ["t1", "t2", "t3"]
    assert {i.line for i in res.recovered} == {3, 4}
    assert res.rows[0]["label"] is None


def test_bom_crlf_and_non_utf8_bytes(tmp_path):
    body = ("\ufeff\tid\tsentence1\tsentence2\tsimilarity\r\n"
            "0\tx1\ta dog runs\ta dog walks\t3.2\r\n").encode() + (
            b"1\tx2\tcaf\xe9 au lait\ta coffee\t4.0\r\n")
    res = read_task_file(write(tmp_path, "sts.csv", body), task="sts", cfg=STS, split="train")
    assert [r["id"] for r in res.rows] == ["x1"]
    assert res.rows[0]["label"] == pytest.approx(3.2)
    assert res.rejected[0].line == 3 and "UTF-8" in res.rejected[0].reason


def test_strict_mode_stops_at_first_bad_row(tmp_path):
    body = QUORA_HEADER + "0\tq1\ta\tb\t1.0\n1\tq2\ta\tb\t2.0\n"
    with pytest.raises(DataError) as err:
        read_task_file(write(tmp_path, "q.csv", body), task="para", cfg=PARA, split="train",
                       strict=True)
    assert str(err.value).endswith("q.csv:3: field 'label': label '2.0' is not a class in 0..1")


def test_header_that_is_not_cs224n_fails_naming_file_and_line(tmp_path):
    with pytest.raises(UserError, match=r"h\.csv:1: field 'id'"):
        read_task_file(write(tmp_path, "h.csv", "a,b,c\n1,2,3\n"), task="sst", cfg=SST,
                       split="train")


def test_empty_and_missing_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="empty"):
        read_task_file(write(tmp_path, "e.csv", ""), task="sst", cfg=SST, split="train")
    with pytest.raises(UserError, match="not found"):
        read_task_file(tmp_path / "nope.csv", task="sst", cfg=SST, split="train")


REAL_ROWS = {
    ("ids-sst-train.csv", "sst", "train"): 8544, ("ids-sst-dev.csv", "sst", "dev"): 1101,
    ("ids-sst-test-student.csv", "sst", "test"): 2210,
    ("quora-train.csv", "para", "train"): 13507, ("quora-dev.csv", "para", "dev"): 10000,
    ("quora-test-student.csv", "para", "test"): 10214,
    ("sts-train.csv", "sts", "train"): 6040, ("sts-test-student.csv", "sts", "test"): 1725,
    ("ids-cfimdb-test-student.csv", "cfimdb", "test"): 488,
}


@pytest.mark.realdata
@pytest.mark.parametrize("name,task,split", list(REAL_ROWS))
def test_real_files_every_line_accounted_for(cs224n_dir, name, task, split):
    cfg = {"sst": SST, "cfimdb": TaskConfig(type="classification", num_labels=2, pair=False),
           "para": PARA, "sts": STS}[task]
    res = read_task_file(cs224n_dir / name, task=task, cfg=cfg, split=split)
    assert res.report.lines_read == REAL_ROWS[(name, task, split)]
    assert res.report.kept + res.report.rejected == res.report.lines_read
    if split == "test":
        assert res.report.kept == res.report.lines_read  # every test id survives
    assert all(len(str(r["id"])) >= 5 for r in res.rows)
