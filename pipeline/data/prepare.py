"""The prepare step: raw task files -> validated tables, a report and a quarantine.

Output layout (DESIGN.md data contract):
``{out}/{task}/{split}.parquet`` with id, text_a, text_b, label, task, split (+ the source file
and line of each row), ``{out}/report.json`` with rows read/kept/rejected/recovered per file, and
``{out}/rejected.parquet`` with each rejected row, its file, line, field and reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipeline.config import SPLITS, Params
from pipeline.data.cs224n import BUILTIN_FILES, Issue, read_task_file
from pipeline.data.synthetic import check_synthetic_tasks, write_synthetic_dataset
from pipeline.errors import UserError
from pipeline.io import atomic_path, write_json, write_parquet

PREPARED_SCHEMA = pa.schema([
    ("id", pa.string()), ("text_a", pa.string()), ("text_b", pa.string()),
    ("label", pa.float64()), ("task", pa.string()), ("split", pa.string()),
    ("file", pa.string()), ("line", pa.int32()),
])
REJECTED_SCHEMA = pa.schema([
    ("task", pa.string()), ("split", pa.string()), ("file", pa.string()), ("line", pa.int32()),
    ("field", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
])


@dataclass
class PrepareSummary:
    rows: dict[str, dict[str, int]]
    rejected: int
    recovered: int


def cs224n_files(params: Params) -> tuple[Path, dict[str, dict[str, list[str]]]]:
    """The data folder and, per task and split, its file names (checked before any work)."""
    assert params.data.dir is not None
    base = Path(params.data.dir).expanduser()
    if not base.is_dir():
        raise UserError(f"data.dir does not exist or is not a folder: {base}")
    files: dict[str, dict[str, list[str]]] = {}
    for name, cfg in params.tasks.items():
        chosen = cfg.files or BUILTIN_FILES.get(name)
        if chosen is None:
            raise UserError(f"task '{name}' is not built in; give tasks.{name}.files "
                            "(train/dev/test file lists relative to data.dir)")
        for split in ("train", "dev"):
            if not chosen.get(split):
                raise UserError(f"task '{name}' has no {split} file (tasks.{name}.files.{split})")
        files[name] = {s: list(chosen.get(s, [])) for s in SPLITS}
        for split, names in files[name].items():
            for n in names:
                if not (base / n).is_file():
                    raise UserError(f"data file not found: {base / n} (task '{name}', "
                                    f"split '{split}')")
    return base, files


def synthetic_files(params: Params, out_dir: Path) -> tuple[Path, dict[str, dict[str, list[str]]]]:
    """Generate the synthetic data set into ``out_dir`` (CS224N layout)."""
    syn = params.data.synthetic
    sizes = {"train": syn.train_size, "dev": syn.dev_size, "test": syn.test_size}
    return out_dir, write_synthetic_dataset(out_dir, list(params.tasks), sizes, params.seed)


def _cap(rows: list[dict[str, object]], limit: int | None, seed: str) -> list[dict[str, object]]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def prepare(params: Params, out_dir: Path) -> PrepareSummary:
    """Read every task file, validate, quarantine, and write the prepared tables atomically."""
    if params.data.source == "cs224n":
        source = cs224n_files(params)
    else:
        check_synthetic_tasks(list(params.tasks))
        source = None
    with atomic_path(out_dir) as staged:
        staged.mkdir(parents=True)
        base, files = source or synthetic_files(params, staged / "source")
        reports: list[dict[str, object]] = []
        rejected: list[tuple[str, str, Issue]] = []
        counts: dict[str, dict[str, int]] = {}
        n_recovered = 0
        for task, cfg in params.tasks.items():
            counts[task] = {}
            for split in SPLITS:
                names = files[task].get(split, [])
                if not names:
                    continue
                seen: dict[str, str] = {}
                rows: list[dict[str, object]] = []
                for name in names:
                    res = read_task_file(base / name, task=task, cfg=cfg, split=split,
                                         strict=params.data.strict, seen_ids=seen,
                                         display_name=name)
                    rows.extend(res.rows)
                    reports.append(res.report_dict())
                    rejected.extend((task, split, i) for i in res.rejected)
                    n_recovered += len(res.recovered)
                limit = {"train": params.data.max_train_examples_per_task,
                         "dev": params.data.max_dev_examples_per_task}.get(split)
                rows = _cap(rows, limit, f"{params.seed}/{task}/{split}")
                for r in rows:
                    r["task"], r["split"] = task, split
                table = pa.Table.from_pylist(rows, schema=PREPARED_SCHEMA)
                write_parquet(staged / task / f"{split}.parquet", table)
                counts[task][split] = len(rows)
        rej_table = pa.Table.from_pylist(
            [{"task": t, "split": s, "file": i.file, "line": i.line, "field": i.field,
              "reason": i.reason, "raw": i.raw} for t, s, i in rejected], schema=REJECTED_SCHEMA)
        write_parquet(staged / "rejected.parquet", rej_table)
        write_json(staged / "report.json", {
            "source": params.data.source,
            "files": reports,
            "rows": counts,
            "totals": {
                "lines_read": sum(int(r["lines_read"]) for r in reports),  # type: ignore[call-overload]
                "kept": sum(int(r["kept"]) for r in reports),  # type: ignore[call-overload]
                "rejected": len(rejected),
                "recovered": n_recovered,
            },
        })
    return PrepareSummary(rows=counts, rejected=len(rejected), recovered=n_recovered)
