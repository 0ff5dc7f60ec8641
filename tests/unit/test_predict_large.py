"""`predict --input` streams a large file with bounded memory (issue 9, item 7).

A 200,000-row file is scored by a real ``python -m pipeline predict`` process with the
``tiny-random`` encoder (untrained: the numbers do not matter here, the plumbing does). Its peak
resident memory may exceed that of the same command on a 2,000-row file by at most
``MEMORY_BOUND_MIB``: reading the whole file, tokenizing it at once or holding every
prediction would cost several hundred MiB more at this size. Every row's id comes back once, in
input order, and the rows match what the in-memory ``predict_texts`` gives for them.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import parse_params
from pipeline.predict import load_predictor, predict_texts
from pipeline.train.run import build_model, save_inference_files
from tests.conftest import ROOT, tiny_params_dict

ROWS = 200_000
SMALL_ROWS = 2_000
MEMORY_BOUND_MIB = 64  # extra peak RSS allowed for 100x the rows
WORDS = "good bad film plot actor slow sharp dull funny warm cold long short".split()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("large") / "model"
    params = parse_params(tiny_params_dict())
    build_model(params).save(out)
    save_inference_files(params, {"encoder": "tiny-random", "max_length": 16,
                                  "pad_token_id": 0}, out)
    return out


def _write_input(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "sentence"])
        for i in range(n):
            w.writerow([f"r{i}", f"{WORDS[i % 13]} {WORDS[i % 7]} {WORDS[i % 11]}"])


def _predict(model: Path, src: Path, out: Path) -> tuple[int, int, str]:
    """(exit status, peak RSS in KiB, stderr) of one predict process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "predict", "--model", str(model),
                             "--task", "sst", "--input", str(src), "--output", str(out),
                             "--batch-size", "512"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, err


@pytest.mark.slow
def test_200k_rows_stream_with_bounded_memory(model_dir, tmp_path):
    small_in, big_in = tmp_path / "small.csv", tmp_path / "big.csv"
    _write_input(small_in, SMALL_ROWS)
    _write_input(big_in, ROWS)
    rc, small_rss, err = _predict(model_dir, small_in, tmp_path / "small-out.csv")
    assert rc == 0, err
    rc, big_rss, err = _predict(model_dir, big_in, tmp_path / "big-out.csv")
    assert rc == 0, err
    extra_mib = (big_rss - small_rss) / 1024
    print(f"peak RSS {small_rss / 1024:.0f} MiB ({SMALL_ROWS} rows), {big_rss / 1024:.0f} MiB "
          f"({ROWS} rows)")
    assert extra_mib < MEMORY_BOUND_MIB, f"peak RSS grew by {extra_mib:.0f} MiB"

    with (tmp_path / "big-out.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "prediction", "p_0", "p_1", "p_2", "p_3", "p_4"]
    assert [r[0] for r in rows[1:]] == [f"r{i}" for i in range(ROWS)]
    predictor = load_predictor(model_dir, "cpu")
    sample = range(ROWS - 300, ROWS)  # the last chunk, against the in-memory path
    p = predict_texts(predictor, "sst",
                      [f"{WORDS[i % 13]} {WORDS[i % 7]} {WORDS[i % 11]}" for i in sample])
    assert [int(rows[i + 1][1]) for i in sample] == p.pred.tolist()
    got = np.array([[float(v) for v in rows[i + 1][2:]] for i in sample])
    assert got == pytest.approx(p.scores, abs=1e-6)


@pytest.mark.slow  # a `predict` subprocess on a trained model
def test_a_bad_row_midway_leaves_no_partial_output(model_dir, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _write_input(src, 5000)
    with src.open("a", encoding="utf-8") as f:
        f.write("only-an-id\n")
    rc, _, err = _predict(model_dir, src, out)
    assert rc == 2
    assert err.strip() == f"error: {src}:5002: too few fields for columns sentence"
    assert not out.exists()
