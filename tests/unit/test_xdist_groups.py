"""Under `pytest -n 2 --dist loadgroup` (scripts/run-tests.sh), a module whose tests share a
module-scoped fixture runs on one worker, so the fixture is built once; other tests stay
ungrouped. Guards the hook in tests/conftest.py and the pytest / xdist pair
it needs (pytest 9.2 moved the node id where xdist 3.8 adds its group, silently)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a pytest run with two workers of its own

SHARED = '''
import os, time
import pytest

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    log = tmp_path_factory.getbasetemp().parent / "builds.log"
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    return 1

@pytest.mark.parametrize("i", range(6))
def test_uses_it(built, i):
    time.sleep(0.2)
'''
SPREAD = '''
import time
import pytest

@pytest.mark.parametrize("i", range(6))
def test_alone(i):
    time.sleep(0.2)
'''


def test_a_module_fixture_is_built_once_and_other_tests_stay_ungrouped(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    (tmp_path / "test_shared.py").write_text(textwrap.dedent(SHARED))
    (tmp_path / "test_spread.py").write_text(textwrap.dedent(SPREAD))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
         "no:cacheprovider", f"--basetemp={tmp_path / 'tmp'}", "-m", ""],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shared = re.findall(r"\[(gw\d)\].*PASSED test_shared\.py::\S+@(\S+)", proc.stdout)
    assert len(shared) == 6 and {group for _, group in shared} == {"test_shared"}, proc.stdout
    assert len({worker for worker, _ in shared}) == 1, proc.stdout
    spread = re.findall(r"PASSED test_spread\.py::(\S+)", proc.stdout)
    assert len(spread) == 6 and not any("@" in test for test in spread), proc.stdout
    builds = (tmp_path / "tmp" / "builds.log").read_text().split()
    assert len(builds) == 1, builds  # one build, in one worker
