"""Shared fixtures: tiny CPU configs, the project root, the optional real-data folder, and
the session's built end-to-end project (``tests/e2e.py``)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from pipeline.config import deep_merge

if TYPE_CHECKING:
    from pipeline.config import Params
    from tests.e2e import BuiltRepo

ROOT = Path(__file__).resolve().parents[1]

# Small enough to train in seconds on 2 CPU cores with tiny-random, large enough to learn.
TINY_OVERRIDES: dict[str, Any] = {
    "encoder": {"name": "tiny-random"},
    "data": {"source": "synthetic", "dir": None,
             "synthetic": {"train_size": 600, "dev_size": 200, "test_size": 100}},
    "tokenize": {"max_length": 64},
    "train": {"epochs": 5, "lr": 1.0e-3, "head_lr": None, "batch_size": 32,
              "batches_per_epoch": None, "threads": None},
}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker's share of the cores as its thread count.

    Torch (and the OpenMP / MKL pools under it) start one thread per core in every process:
    two or three workers on two cores, each training, and each DVC stage they start, would run
    two or three threads per core, and spinning OpenMP threads that share a core slow each
    other down far more than the halving of cores suggests. ``OMP_NUM_THREADS`` is read by
    this worker's torch and inherited by the stages it runs; a value the user set is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 1 or "OMP_NUM_THREADS" in os.environ:
        return
    share = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = share
    if "torch" in sys.modules:  # already imported by a plugin: its pool is sized already
        sys.modules["torch"].set_num_threads(int(share))


def _cpu_seconds() -> float:
    """User + system CPU of this process and of the children it has waited for (the stages
    and DVC commands a test runs through ``subprocess.run``)."""
    usage = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """With ``MTB_TEST_TIMELINE=FILE``, one JSON line per test (setup to teardown): worker,
    node id, start and end (epoch seconds) and CPU seconds. ``--durations`` gives wall time
    only, which on a shared machine mostly measures the other workers; CPU says what a test
    costs, and the timeline shows idle workers (``python -m benchmarks.suite_time FILE``)."""
    path = os.environ.get("MTB_TEST_TIMELINE")
    start, cpu = time.time(), _cpu_seconds()
    yield
    if path:
        line = {"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "test": item.nodeid,
                "start": start, "end": time.time(), "cpu": _cpu_seconds() - cpu}
        with open(path, "a") as fh:  # one short write per line: workers' lines do not mix
            fh.write(json.dumps(line) + "\n")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep a module whose tests share a module-scoped fixture on one xdist worker.

    Such a fixture (a trained model, a tokenized corpus) is built once per process that runs
    one of its tests; under ``--dist loadgroup`` the tests of one module would otherwise
    spread over the workers and the fixture would be built on each (up to 90 s each)."""
    for item in items:
        infos = getattr(item, "_fixtureinfo", None)
        if infos is None or any(True for _ in item.iter_markers("xdist_group")):
            continue
        scopes = {d.scope for defs in infos.name2fixturedefs.values() for d in defs}
        if scopes & {"module", "class", "package"}:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def prepare_for_training(params: Params, work: Path) -> None:
    """What the train stage reads, made in ``work`` as the stages would: ``prepared/``,
    ``tok/`` and an empty ``mlm/`` (MLM off)."""
    from pipeline.data.prepare import prepare
    from pipeline.data.tokenize import tokenize_all
    from pipeline.model.stage_tokenizer import load_stage_tokenizer

    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tok", params.tasks,
                 load_stage_tokenizer(params.encoder), params.tokenize, params.encoder.name)
    (work / "mlm").mkdir()


def default_params_dict() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params_dict(**extra: Any) -> dict[str, Any]:
    return deep_merge(deep_merge(default_params_dict(), TINY_OVERRIDES), extra)


@pytest.fixture
def tiny_params() -> dict[str, Any]:
    return tiny_params_dict()


def real_data_dir() -> Path | None:
    env = os.environ.get("MTB_CS224N_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    return None


@pytest.fixture
def cs224n_dir() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("real CS224N data not available (set MTB_CS224N_DIR)")
    return d


@pytest.fixture(scope="session")
def e2e_built(tmp_path_factory: pytest.TempPathFactory) -> BuiltRepo:
    """The end-to-end project after its first ``dvc repro``, built once per session: under
    pytest-xdist in the folder the workers share, by whichever worker needs it first."""
    from tests.e2e import build

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return build(shared / "e2e")
