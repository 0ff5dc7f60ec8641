"""User errors from a stage: one clear line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, tiny_params_dict


def run_stage(tmp_path, stage, params, extra_env=None):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stage,params,message", [
    ("prepare", tiny_params_dict(sampler="anel"),
     "sampler: unknown sampler 'anel'; valid choices: anneal, capped"),
    ("prepare", tiny_params_dict(data={"source": "cs224n", "dir": "/nonexistent/cs224n"}),
     "data.dir does not exist or is not a folder: /nonexistent/cs224n"),
    ("train", tiny_params_dict(model={"pooling": "avg"}),
     "model.pooling: unknown pooling 'avg'; valid choices: cls, max, mean"),
    ("tokenize", tiny_params_dict(encoder={"name": "./no-such-encoder"}),
     "encoder './no-such-encoder' is neither a built-in name"),
    ("prepare", tiny_params_dict(tasks={"sst": {"type": "classification", "num_labels": 5,
                                                "pair": False, "colour": "red"}}),
     "tasks.sst.colour: unknown key"),
])
@pytest.mark.slow  # a stage subprocess per case
def test_user_errors_are_one_clear_line(tmp_path, stage, params, message):
    proc = run_stage(tmp_path, stage, params)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # failed before any work


@pytest.mark.slow  # a stage subprocess
def test_synthetic_source_rejects_a_task_it_cannot_generate(tmp_path):
    """One line that says what to set: data.source and data.dir (the folder of its files)."""
    params = tiny_params_dict(tasks={"yelp": {"type": "classification", "num_labels": 5,
                                              "pair": False}})
    proc = run_stage(tmp_path, "prepare", params)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: data.source=synthetic only generates the built-in tasks (sst, para, sts, "
        "cfimdb); for task(s) yelp set data.source=cs224n and data.dir to the folder holding "
        "tasks.yelp.files (built-in tasks read their CS224N files from the same folder)"]
    assert not (tmp_path / "data").exists()
