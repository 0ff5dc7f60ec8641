"""The prepare step: raw task files -> validated tables, a report and a quarantine.

Output layout (DESIGN.md data contract):
``{out}/{task}/{split}.parquet`` with id, text_a, text_b, label, task, split (+ the source file
and line of each row), ``{out}/report.json`` with rows read/kept/rejected/recovered/dropped per
file, ``{out}/rejected.parquet`` with each rejected (malformed) row, its file, line, field and
reason, and ``{out}/dropped.parquet`` with each valid train row left out on purpose (a duplicate
within train, or text that also occurs in dev/test) and the row it matched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipeline.config import SPLITS, DataConfig, Params, TaskConfig
from pipeline.data.cs224n import (
    BUILTIN_FILES,
    Issue,
    ReadResult,
    file_spec,
    read_task_file,
)
from pipeline.data.overlap import Dropped, dedupe, drop_eval_overlap
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
DROPPED_SCHEMA = pa.schema([
    ("task", pa.string()), ("split", pa.string()), ("file", pa.string()), ("line", pa.int32()),
    ("id", pa.string()), ("kind", pa.string()), ("reason", pa.string()),
    ("matched_split", pa.string()), ("matched_file", pa.string()),
    ("matched_line", pa.int32()), ("text_a", pa.string()), ("text_b", pa.string()),
    ("label", pa.float64()),
])
DROP_KINDS = ("duplicate", "overlap_dev", "overlap_test")


@dataclass
class PrepareSummary:
    rows: dict[str, dict[str, int]]
    rejected: int
    recovered: int
    dropped: dict[str, int] = field(default_factory=dict)  # kind -> train rows left out


@dataclass
class SourceFiles:
    """Where the task files are: the folder, per task and split the files found there, and
    the optional files that were not (recorded in report.json, not an error)."""

    base: Path
    files: dict[str, dict[str, list[str]]]
    skipped: list[dict[str, str]] = field(default_factory=list)


def task_file_specs(name: str, cfg: TaskConfig) -> dict[str, list[str]]:
    """Per split, the task's file list: ``tasks.<name>.files.<split>`` where given, else the
    built-in CS224N names, so declaring only ``train`` keeps the built-in dev and test."""
    builtin = BUILTIN_FILES.get(name)
    if builtin is None and cfg.files is None:
        raise UserError(f"task '{name}' is not built in; give tasks.{name}.files "
                        "(train/dev/test file lists relative to data.dir)")
    given = cfg.files or {}
    return {s: list(given[s] if s in given else (builtin or {}).get(s, [])) for s in SPLITS}


def data_dir(params: Params, root: Path) -> Path:
    """``data.dir``, a relative one taken from ``root`` (the folder of params.yaml: the repo
    root, where DVC runs every stage), so ``data.dir=data/cs224n`` means the shipped copy."""
    assert params.data.dir is not None
    base = Path(params.data.dir).expanduser()
    base = base if base.is_absolute() else root / base
    if not base.is_dir():
        raise UserError(f"data.dir does not exist or is not a folder: {base}")
    return base


def cs224n_files(params: Params, root: Path = Path(".")) -> SourceFiles:
    """The data folder and, per task and split, its file names (checked before any work):
    a missing required file is an error naming it, a missing optional one is skipped."""
    base = data_dir(params, root)
    source = SourceFiles(base, {})
    for name, cfg in params.tasks.items():
        specs = task_file_specs(name, cfg)
        source.files[name] = {}
        for split, entries in specs.items():
            present: list[str] = []
            for entry in entries:
                n, optional = file_spec(entry)
                if n in present:
                    raise UserError(f"task '{name}' lists {n} twice (tasks.{name}.files.{split})")
                if (base / n).is_file():
                    present.append(n)
                elif optional:
                    source.skipped.append({"task": name, "split": split, "file": n,
                                           "reason": "optional file not found in data.dir"})
                else:
                    raise UserError(f"data file not found: {base / n} (task '{name}', "
                                    f"split '{split}')")
            source.files[name][split] = present
        for split in ("train", "dev"):
            if not source.files[name][split]:
                why = ": none of its optional files is in data.dir" if specs[split] else ""
                raise UserError(f"task '{name}' has no {split} file "
                                f"(tasks.{name}.files.{split}{why})")
    return source


def synthetic_files(params: Params, out_dir: Path) -> SourceFiles:
    """Generate the synthetic data set into ``out_dir`` (CS224N layout)."""
    syn = params.data.synthetic
    sizes = {"train": syn.train_size, "dev": syn.dev_size, "test": syn.test_size}
    return SourceFiles(out_dir, write_synthetic_dataset(out_dir, list(params.tasks), sizes,
                                                        params.seed))


def _cap(rows: list[dict[str, object]], limit: int | None, seed: str) -> list[dict[str, object]]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def drop_train_rows(train: list[dict[str, object]], evals: dict[str, list[dict[str, object]]],
                    cfg: TaskConfig, data: DataConfig) -> tuple[list[dict[str, object]],
                                                                list[Dropped]]:
    """Train rows without those whose text is in dev/test (``data.drop_eval_overlap``), then
    without repeated copies (``data.dedupe_train``). Overlap goes first so that every train
    copy of an evaluation example counts as overlap, not one of them as a duplicate."""
    dropped: list[Dropped] = []
    if data.drop_eval_overlap:
        train, gone = drop_eval_overlap(train, evals, cfg.pair)
        dropped += gone
    if data.dedupe_train:
        train, gone = dedupe(train, cfg.pair, "train")
        dropped += gone
    return train, dropped


def _account(results: list[ReadResult], dropped: list[Dropped]) -> None:
    """Move each dropped row from its file's ``kept`` to the count of its kind, so every
    file's lines stay accounted for: kept + rejected + dropped == lines_read."""
    reports = {r.report.file: r.report for r in results if r.report is not None}
    for d in dropped:
        rep = reports[str(d.row["file"])]
        rep.kept -= 1
        setattr(rep, d.kind, getattr(rep, d.kind) + 1)
    for rep in reports.values():
        assert rep.kept + rep.rejected + rep.dropped == rep.lines_read, rep


def _read_splits(src: SourceFiles, task: str, cfg: TaskConfig,
                 strict: bool) -> dict[str, list[ReadResult]]:
    """Every file of every split of one task, read (ids are unique across a split's files)."""
    results: dict[str, list[ReadResult]] = {}
    for split in SPLITS:
        names = src.files[task].get(split, [])
        if not names:
            continue
        seen: dict[str, str] = {}
        results[split] = [read_task_file(src.base / name, task=task, cfg=cfg, split=split,
                                         strict=strict, seen_ids=seen, display_name=name)
                          for name in names]
    return results


def _dropped_record(task: str, d: Dropped) -> dict[str, object]:
    r = d.row
    return {"task": task, "split": "train", "file": r["file"], "line": r["line"], "id": r["id"],
            "kind": d.kind, "reason": d.reason, "matched_split": d.matched_split,
            "matched_file": d.matched_file, "matched_line": d.matched_line,
            "text_a": r["text_a"], "text_b": r["text_b"], "label": r["label"]}


def prepare(params: Params, out_dir: Path, root: Path = Path(".")) -> PrepareSummary:
    """Read every task file, validate, quarantine, drop train rows that leak into dev/test or
    repeat, and write the prepared tables atomically. A relative ``data.dir`` is taken from
    ``root``."""
    if params.data.source == "cs224n":
        source = cs224n_files(params, root)
    else:
        check_synthetic_tasks(list(params.tasks))
        source = None
    with atomic_path(out_dir) as staged:
        staged.mkdir(parents=True)
        src = source or synthetic_files(params, staged / "source")
        reports: list[dict[str, object]] = []
        rejected: list[tuple[str, str, Issue]] = []
        dropped: list[dict[str, object]] = []
        counts: dict[str, dict[str, int]] = {}
        dropped_counts: dict[str, dict[str, int]] = {}
        n_recovered = 0
        for task, cfg in params.tasks.items():
            results = _read_splits(src, task, cfg, params.data.strict)
            split_rows = {split: [row for r in res for row in r.rows]
                          for split, res in results.items()}
            for split, res in results.items():
                for r in res:
                    rejected.extend((task, split, i) for i in r.rejected)
                    n_recovered += len(r.recovered)
            evals = {s: split_rows[s] for s in ("dev", "test") if s in split_rows}
            split_rows["train"], gone = drop_train_rows(split_rows["train"], evals, cfg,
                                                        params.data)
            _account(results["train"], gone)
            dropped += [_dropped_record(task, d) for d in gone]
            dropped_counts[task] = {k: sum(d.kind == k for d in gone) for k in DROP_KINDS}
            reports += [r.report_dict() for res in results.values() for r in res]
            counts[task] = {}
            for split, rows in split_rows.items():
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
        write_parquet(staged / "dropped.parquet",
                      pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA))
        totals = {k: sum(c[k] for c in dropped_counts.values()) for k in DROP_KINDS}
        write_json(staged / "report.json", {
            "source": params.data.source,
            "files": reports,
            "skipped_optional_files": src.skipped,
            "rows": counts,
            "dropped": dropped_counts,
            "totals": {
                "lines_read": sum(int(r["lines_read"]) for r in reports),  # type: ignore[call-overload]
                "kept": sum(int(r["kept"]) for r in reports),  # type: ignore[call-overload]
                "rejected": len(rejected),
                "recovered": n_recovered,
                **{f"dropped_{k}": n for k, n in totals.items()},
            },
        })
    return PrepareSummary(rows=counts, rejected=len(rejected), recovered=n_recovered,
                          dropped=totals)

