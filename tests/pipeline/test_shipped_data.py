"""The shipped CS224N files under data/cs224n: ``data.dir=data/cs224n`` (relative) is read from
the repo root by the DVC stage, and editing a shipped file reruns ``prepare``."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tiny_params_dict
from tests.pipeline.conftest import commit_all, make_repo, run


@pytest.mark.slow
def test_relative_data_dir_and_editing_a_shipped_file_reruns_prepare(tmp_path):
    repo = make_repo(tmp_path / "project", tiny_params_dict(
        data={"source": "cs224n", "dir": "data/cs224n"}))
    run(repo, "dvc", "repro", "prepare")
    report = json.loads((repo / "data/prepared/report.json").read_text())
    assert report["rows"]["sts"]["dev"] == 863
    train_files = {f["file"] for f in report["files"] if f["split"] == "train"}
    assert {"quora-train.csv", "quora-train-extra.csv"} <= train_files
    commit_all(repo, "prepared")
    assert "prepare" not in run(repo, "dvc", "status", "prepare").stdout  # up to date

    with open(repo / "data/cs224n/sts-dev.csv", "a", encoding="utf-8") as f:
        f.write("9999\tnewrow0000000000000000000a\tA cat sits.\tA cat is sitting.\t4.5\n")
    status = run(repo, "dvc", "status", "prepare").stdout
    assert "prepare" in status and "data/cs224n" in status, status
    run(repo, "dvc", "repro", "prepare")
    report = json.loads((repo / "data/prepared/report.json").read_text())
    assert report["rows"]["sts"]["dev"] == 864  # 863 shipped rows + the new one
