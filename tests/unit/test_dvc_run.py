"""The one DVC runner: its failure kinds, and its one policy for a reused experiment name
(the new run replaces the experiment of that name), shared by ``ablate`` and the flows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.ablations import run_experiment
from pipeline.dvc_run import (
    DvcFailed,
    DvcInfraError,
    exp_show,
    experiment_list,
    free_name_args,
    run_dvc,
)
from pipeline.env import subprocess_env


def experiment_names(shown: list[dict]) -> set[str]:
    """The experiment names in ``dvc exp show --json`` output."""
    return {rev.get("name") for base in shown for exp in base.get("experiments") or []
            for rev in exp.get("revs") or [] if rev.get("name")}


def test_a_reused_name_is_freed_by_removing_its_experiment():
    assert free_name_args("a", {"a", "b"}) == ["exp", "remove", "a"]
    assert free_name_args("c", {"a", "b"}) is None
    assert free_name_args("a", set()) is None


def test_a_failed_command_is_dvc_failed_with_dvcs_error(tmp_path):
    with pytest.raises(DvcFailed, match=r"dvc repro failed \(exit \d+\): ERROR") as err:
        run_dvc(tmp_path, ["repro"])  # not a DVC repo
    assert err.value.code != 0 and err.value.output
    assert not isinstance(err.value, DvcInfraError)


@pytest.fixture
def tiny_project(tmp_path) -> Path:
    """A git + DVC repo with one stage that writes its one param to a file."""
    def sh(*cmd: str) -> None:
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, env=env)

    env = {**subprocess_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    (tmp_path / "params.yaml").write_text("x: 1\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"echo": {
        "cmd": f"{sys.executable} -c \"import yaml; open('out.txt', 'w').write("
               "str(yaml.safe_load(open('params.yaml'))['x']))\"",
        "params": ["x"], "outs": ["out.txt"]}}}))
    sh("git", "init", "-q")
    sh(sys.executable, "-m", "dvc", "init", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "init")
    return tmp_path


@pytest.mark.slow
def test_rerunning_a_name_replaces_its_experiment_from_the_run_cache(tiny_project, monkeypatch):
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "t")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "t@localhost")
    params = {"x": 1}
    first = run_experiment(tiny_project, "two", {"x": "2"}, params, stream=False)
    again = run_experiment(tiny_project, "two", {"x": "2"}, params, stream=False)
    assert first.stages_run == ["echo"] and again.from_cache
    # one experiment under the name, not two and two-2
    assert experiment_names(exp_show(tiny_project)) == {"two"} == experiment_list(tiny_project)
