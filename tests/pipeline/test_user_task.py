"""A task is data: a user task declared only in params.yaml, with its own files and label
column, runs through every stage of `dvc repro` (prepare -> export) with no code change."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from pipeline.data.synthetic import write_synthetic_dataset
from tests.conftest import tiny_params_dict
from tests.pipeline.conftest import make_repo, run

# A 3-class pair task (entailment / neutral / contradiction). Its files carry an extra
# `genre` column beside the label column `gold`, so the label column cannot be guessed from
# the header: the run only works because params.yaml names it.
NLI = {"type": "classification", "num_labels": 3, "pair": True, "label_column": "gold",
       "files": {"train": ["nli-train.tsv"], "dev": ["nli-dev.tsv"],
                 "test": ["nli-test.tsv"]}}
SIZES = {"train": 96, "dev": 32, "test": 24}
WORDS = ["man", "dog", "park", "ball", "car", "tree", "child", "river", "book", "phone"]


def _nli_rows(rng: random.Random, n: int, split: str) -> list[dict[str, object]]:
    """Rows whose text is unique (the scene names split and row), so prepare's drop of train
    rows repeated or also in dev/test keeps every one of them."""
    rows = []
    for i in range(n):
        a, b, c = rng.sample(WORDS, 3)
        label = rng.randrange(3)
        where = f"in {split} scene {i}"
        second = [f"a {a} near a {b} {where} .", f"a {a} near a {c} {where} .",
                  f"no {a} is near a {b} {where} ."][label]
        rows.append({"id": f"{rng.getrandbits(100):025x}", "s1": f"a {a} near a {b} {where} .",
                     "s2": second, "genre": rng.choice(["fiction", "news"]), "gold": label,
                     "line": i})
    return rows


def write_nli_files(data_dir: Path, seed: int = 0) -> dict[str, list[str]]:
    """The user task's own files (tab-separated, CS224N-like header); returns ids per split."""
    rng = random.Random(seed)
    ids = {}
    for split, n in SIZES.items():
        rows = _nli_rows(rng, n, split)
        labelled = split != "test"
        with open(data_dir / f"nli-{split}.tsv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["", "id", "sentence1", "sentence2", "genre",
                        *(["gold"] if labelled else [])])
            for r in rows:
                w.writerow([r["line"], r["id"], r["s1"], r["s2"], r["genre"],
                            *([r["gold"]] if labelled else [])])
        ids[split] = [str(r["id"]) for r in rows]
    return ids


@pytest.mark.slow  # ~50 s on 2 busy cores: six stages, each a fresh interpreter
def test_a_declared_user_task_runs_prepare_to_export(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ids = write_nli_files(data_dir)
    write_synthetic_dataset(data_dir, ["sst"], SIZES, seed=13)  # a built-in task beside it
    params = tiny_params_dict(
        data={"source": "cs224n", "dir": str(data_dir)},
        tokenize={"max_length": 32},
        train={"epochs": 1, "batch_size": 16, "threads": 1},
    )
    params["tasks"] = {"sst": params["tasks"]["sst"], "nli": NLI}
    repo = make_repo(tmp_path / "project", params)

    out = run(repo, "dvc", "repro").stdout
    assert set(re.findall(r"Running stage '(\w+)'", out)) == {
        "prepare", "tokenize", "mlm", "train", "evaluate", "export"}

    report = json.loads((repo / "data/prepared/report.json").read_text())
    assert report["rows"]["nli"] == SIZES and report["totals"]["rejected"] == 0
    metrics = json.loads((repo / "results/eval/metrics.json").read_text())
    assert set(metrics["nli"]) >= {"accuracy", "macro_f1"}
    assert 0.0 <= metrics["nli"]["accuracy"] <= 1.0
    for split in ("dev", "test"):
        lines = (repo / "predictions" / f"nli-{split}-output.csv").read_text().splitlines()
        assert lines[0] == "id \t Predicted_Label "
        got = [line.split(" , ") for line in lines[1:]]
        assert sorted(i for i, _ in got) == sorted(ids[split])
        assert {p.strip() for _, p in got} <= {"0", "1", "2"}
    row = (repo / "results/export/leaderboard_row.csv").read_text()
    assert "nli.accuracy" in row
