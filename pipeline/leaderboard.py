"""``leaderboard.csv``: one row per DVC experiment, its changed params and dev metrics.

Built from ``dvc exp show --json`` (parsed here, no dvc import, so it is testable on saved
output): a list ``[workspace, baseline commit]`` where the baseline entry holds
``experiments: [{name, revs: [{name, data: {params, metrics}}]}]``. Each row names what the
experiment changed against the baseline commit as ``key=value; key=value`` and flattens
``results/eval/metrics.json`` into columns (``overall``, ``sst.accuracy``, ...); rows are
sorted by ``overall``, best first. The export stage writes the same row for its own run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.io import write_text

PARAMS_FILE = "params.yaml"
METRICS_FILE = "results/eval/metrics.json"
# Wall time of the run's costly stages, as leaderboard columns: (metrics file, key, column).
TIME_METRICS = (("results/train/live/metrics.json", "train_seconds", "train_seconds"),
                ("results/mlm/metrics.json", "seconds", "mlm_seconds"))


@dataclass
class Row:
    name: str
    params: str  # "key=value; key=value"
    metrics: dict[str, float] = field(default_factory=dict)


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": leaf}``; lists stay leaves."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def format_params(params: Mapping[str, Any]) -> str:
    """Flattened params as ``key=value; key=value``, sorted by key."""
    return "; ".join(f"{k}={_fmt(v)}" for k, v in sorted(flatten(params).items()))


def changed_params(baseline: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The params that differ from ``baseline`` (added, changed or removed keys)."""
    base, new = flatten(baseline), flatten(params)
    parts = []
    for k in sorted(set(base) | set(new)):
        if k not in new:
            parts.append(f"{k}=<removed>")
        elif base.get(k, object()) != new[k]:
            parts.append(f"{k}={_fmt(new[k])}")
    return "; ".join(parts)


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_row(name: str, params: Mapping[str, Any], metrics: Mapping[str, Any],
            baseline: Mapping[str, Any] | None = None) -> Row:
    """One run's row; without a baseline every param is listed (the export stage's row)."""
    text = format_params(params) if baseline is None else changed_params(baseline, params)
    return Row(name, text, flatten_metrics(metrics))


def _file_data(data: Mapping[str, Any], kind: str, path: str) -> dict[str, Any] | None:
    entry = (data.get(kind) or {}).get(path) or {}
    got = entry.get("data")
    return got if isinstance(got, dict) else None


def time_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """The run's stage wall times found in its DVC metrics (absent files are skipped)."""
    out: dict[str, float] = {}
    for path, key, column in TIME_METRICS:
        value = (_file_data(data, "metrics", path) or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[column] = float(value)
    return out


def rows_from_exp_show(shown: list[dict[str, Any]]) -> list[Row]:
    """Rows of every experiment in ``dvc exp show --json`` output, best ``overall`` first.

    Experiments whose run failed (no metrics) are left out; a missing baseline is an error.
    """
    if not isinstance(shown, list):
        raise UserError("dvc exp show --json: expected a list of revisions")
    baselines = [r for r in shown if isinstance(r, dict) and r.get("rev") != "workspace"]
    rows: list[Row] = []
    for base in baselines:
        base_params = _file_data(base.get("data") or {}, "params", PARAMS_FILE)
        if base_params is None:
            raise UserError(f"baseline {base.get('rev')}: no {PARAMS_FILE} params in "
                            "dvc exp show output")
        for exp in base.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs:
                continue
            data = revs[0].get("data") or {}
            params = _file_data(data, "params", PARAMS_FILE)
            metrics = _file_data(data, "metrics", METRICS_FILE)
            if params is None or metrics is None:
                continue
            name = exp.get("name") or revs[0].get("name") or str(revs[0].get("rev"))
            row = run_row(name, params, metrics, base_params)
            row.metrics.update(time_metrics(data))
            rows.append(row)
    return sort_rows(rows)


def sort_rows(rows: Iterable[Row]) -> list[Row]:
    def key(r: Row) -> tuple[float, str]:
        v = r.metrics.get("overall", -math.inf)
        return (-v, r.name)

    return sorted(rows, key=key)


def metric_columns(rows: Iterable[Row]) -> list[str]:
    """``overall`` and ``overall_mean`` first, then the task metrics sorted."""
    names = {k for r in rows for k in r.metrics}
    first = [k for k in ("overall", "overall_mean") if k in names]
    return first + sorted(names - set(first))


def as_records(rows: list[Row]) -> list[dict[str, Any]]:
    """The rows as dicts with the CSV's columns (for a Prefect table artifact)."""
    cols = metric_columns(rows)
    return [{"name": r.name, "params": r.params, **{c: r.metrics.get(c) for c in cols}}
            for r in rows]


def render_csv(rows: list[Row]) -> str:
    cols = metric_columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "params", *cols])
    for r in rows:
        w.writerow([r.name, r.params, *(_metric_cell(r.metrics.get(c)) for c in cols)])
    return buf.getvalue()


def _metric_cell(v: float | None) -> str:
    return "" if v is None else repr(v)


def write_leaderboard(path: Path, rows: list[Row]) -> None:
    write_text(path, render_csv(rows))


def write_own_row(params_path: Path, metrics_path: Path, out: Path,
                  name: str = "workspace") -> Row:
    """This run's row (every param, since a stage knows no baseline), for the export stage."""
    import yaml

    from pipeline.io import read_json

    params = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    row = run_row(name, params, read_json(metrics_path))
    write_leaderboard(out, [row])
    return row
