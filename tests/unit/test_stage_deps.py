"""Every project file a DVC stage runs is one of its deps in dvc.yaml.

A file missing from a stage's deps lets ``dvc repro`` report "didn't change" after an edit that
changes the stage's outputs. Two views of "runs": each stage module imported in a fresh
interpreter (what Python really loads), and the static import graph, which also sees the
imports inside functions that only run in ``main`` (what ``python -m pipeline.stage_deps``
writes into dvc.yaml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.import_graph import loaded_by
from pipeline.stage_deps import (
    code_deps,
    covered,
    current_deps,
    differences,
    rewrite,
    stage_modules,
    wanted_deps,
)
from tests.conftest import ROOT

SPEC = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
STAGES = stage_modules(SPEC)

LOADED = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps([getattr(m, "__file__", None) for m in list(sys.modules.values())]))
"""


def loaded_project_files(module: str) -> set[Path]:
    """The project files importing ``module`` loads, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", LOADED, module], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=300)
    out = set()
    for name in json.loads(proc.stdout.strip().splitlines()[-1]):
        if name and Path(name).resolve().is_relative_to(ROOT):
            rel = Path(name).resolve().relative_to(ROOT)
            if rel.parts[0] in ("pipeline", "stages"):
                out.add(rel)
    return out


def uncovered(files: set[Path], deps: list[str]) -> list[str]:
    return sorted(str(f) for f in files if not covered(f, deps))


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_file_a_stage_loads_is_one_of_its_deps(stage):
    loaded = loaded_project_files(STAGES[stage])
    assert Path(f"stages/{stage}.py") in loaded  # the probe saw the stage itself
    missing = uncovered(loaded, [str(d) for d in SPEC["stages"][stage]["deps"]])
    assert not missing, (f"stage '{stage}' loads {missing} but dvc.yaml does not list them "
                         "(python -m pipeline.stage_deps --write)")
    # The static graph sees at least what Python loaded (it adds the lazy imports).
    assert loaded <= loaded_by(STAGES[stage], ROOT)


def test_dvc_yaml_code_deps_are_the_stages_imports_including_lazy_ones():
    assert differences(ROOT) == [], "run: python -m pipeline.stage_deps --write"
    assert current_deps(ROOT) == wanted_deps(ROOT)


def test_a_removed_dep_is_reported():
    deps = current_deps(ROOT)["train"]
    assert "pipeline/config.py" in deps
    loaded = loaded_by("stages.train", ROOT)
    assert uncovered(loaded, deps) == []
    assert uncovered(loaded, [d for d in deps if d != "pipeline/config.py"]) == [
        "pipeline/config.py"]


def test_a_function_level_import_is_a_dep(tmp_path):
    """``main`` importing a module inside the function still makes it a dep."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "pipeline" / "sub").mkdir(parents=True)
    (tmp_path / "stages" / "__init__.py").write_text("")
    (tmp_path / "stages" / "s.py").write_text(
        "def main():\n    from pipeline.sub import lazy\n    from . import paths\n")
    (tmp_path / "stages" / "paths.py").write_text("")
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "sub" / "lazy.py").write_text("import pipeline.other\n")
    (tmp_path / "pipeline" / "other.py").write_text("")
    (tmp_path / "pipeline" / "unused.py").write_text("")
    assert code_deps("stages.s", tmp_path) == [
        "stages", "pipeline/__init__.py", "pipeline/other.py", "pipeline/sub"]


def test_write_changes_code_deps_only_and_keeps_the_rest():
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    wanted = {stage: ["stages/x.py"] for stage in STAGES}
    new = yaml.safe_load(rewrite(text, wanted))
    for stage, spec in SPEC["stages"].items():
        others = [d for d in spec["deps"] if not d.startswith(("pipeline", "stages"))]
        assert new["stages"][stage]["deps"] == ["stages/x.py", *others]
        assert {k: v for k, v in new["stages"][stage].items() if k != "deps"} == {
            k: v for k, v in spec.items() if k != "deps"}
    assert new["plots"] == SPEC["plots"]
    assert rewrite(text, wanted_deps(ROOT)) == text
