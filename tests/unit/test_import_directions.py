"""Imports point one way: no cycle between the project's modules or its packages, and prefect
only inside ``pipeline/flows/``.

The graph is static (``pipeline.import_graph``: every import statement, function-level ones
included, so a lazy import inside a function cannot hide a cycle). Two granularities:
- modules: ``pipeline.train.loop`` -> ``pipeline.model.multitask`` ...;
- packages: each subpackage (``pipeline.model``, ``pipeline.train``, ``pipeline.data``,
  ``pipeline.mlm``, ``pipeline.flows``, ``stages``) is one node, and each module directly in
  ``pipeline/`` (``pipeline.config``, ``pipeline.cli``, ...) is a node of its own.
"""

from __future__ import annotations

import ast

from pipeline.import_graph import (
    find_cycle,
    import_graph,
    module_files,
    package_graph,
    package_of,
)
from tests.conftest import ROOT

GRAPH = import_graph(ROOT)


def test_no_cycle_between_modules():
    assert find_cycle(GRAPH) is None


def test_no_cycle_between_packages():
    assert find_cycle(package_graph(GRAPH)) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["pipeline.config"].add("pipeline.train.loop")  # loop imports config
    cycle = find_cycle(planted)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert find_cycle(package_graph(planted)) is not None


def external_imports(path) -> set[str]:
    """Top-level names of every module a file imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def test_only_the_flows_import_prefect():
    importers = sorted(name for name, rel in module_files(ROOT).items()
                       if "prefect" in external_imports(ROOT / rel))
    assert importers and all(name.startswith("pipeline.flows") for name in importers), importers


def test_nothing_outside_the_flows_imports_them():
    outside = {name: sorted(t for t in targets if package_of(t) == "pipeline.flows")
               for name, targets in GRAPH.items() if package_of(name) != "pipeline.flows"}
    assert {k: v for k, v in outside.items() if v} == {}


def test_config_and_the_stage_wiring_do_not_import_the_model_or_training():
    """Validating params and running a stage's wrapper need neither torch code nor flows."""
    for name in ("pipeline.config", "pipeline.names", "pipeline.stage", "pipeline.errors"):
        assert {package_of(t) for t in GRAPH[name]} <= {
            "pipeline.errors", "pipeline.names", "pipeline.env"}, (name, GRAPH[name])
