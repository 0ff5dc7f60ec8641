"""Leaderboard rows built from `dvc exp show --json`: one row per experiment, best first.

A small, flow-local helper on purpose (the project's own leaderboard module is developed
elsewhere): it reads only what DVC reports, so runs started from a terminal and from the
Prefect UI appear side by side.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PARAMS_FILE = "params.yaml"
METRICS_FILE = "results/eval/metrics.json"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {'a.b': leaf}; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _file_data(rev: dict[str, Any], kind: str, path: str) -> dict[str, Any]:
    entry = ((rev.get("data") or {}).get(kind) or {}).get(path) or {}
    return entry.get("data") or {}


def _experiment_revs(shown: list[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], str, dict]]:
    """(baseline, experiment name, experiment rev) for every experiment of every baseline."""
    for baseline in shown:
        if baseline.get("rev") == "workspace":
            continue
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name = rev.get("name") or exp.get("name") or rev.get("rev", "")[:7]
                yield baseline, name, rev


def changed_params(base: dict[str, Any], exp: dict[str, Any]) -> str:
    """`key=value` for each params leaf that differs from the baseline, sorted by key."""
    flat_base, flat_exp = flatten(base), flatten(exp)
    keys = sorted(k for k in flat_base.keys() | flat_exp.keys()
                  if flat_base.get(k) != flat_exp.get(k) and not k.startswith("ablations."))
    return ", ".join(f"{k}={json.dumps(flat_exp.get(k))}" for k in keys)


def leaderboard_rows(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment: name, changed params, then every dev metric; best overall first.

    Experiments without metrics (failed or still queued) sort last with empty metric cells.
    """
    rows: list[dict[str, Any]] = []
    for baseline, name, rev in _experiment_revs(shown):
        metrics = flatten(_file_data(rev, "metrics", METRICS_FILE))
        row: dict[str, Any] = {
            "name": name,
            "changed params": changed_params(_file_data(baseline, "params", PARAMS_FILE),
                                             _file_data(rev, "params", PARAMS_FILE)),
        }
        row.update({k: v for k, v in sorted(metrics.items()) if isinstance(v, int | float)})
        rows.append(row)
    rows.sort(key=lambda r: (r.get("overall") is None, -(r.get("overall") or 0.0), r["name"]))
    metric_cols = sorted({k for r in rows for k in r} - {"name", "changed params", "overall"})
    columns = ["name", "changed params", "overall", *metric_cols]
    return [{c: row.get(c) for c in columns} for row in rows]


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the rows (same columns each) as CSV; an empty leaderboard is a header-only file."""
    columns = list(rows[0]) if rows else ["name", "changed params", "overall"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
