"""CS224N leaderboard files, byte-compatible with the official starter code.

The starter code writes ``f"id \\t Predicted_Sentiment \\n"`` and then ``f"{id} , {pred} \\n"``
per example (spaces and the ``Similiary`` spelling included), where ``pred`` is an element of
a numpy array: sentiment classes are int64 (``3``), paraphrase predictions float32 ``0.0`` /
``1.0`` (it rounds a sigmoid) and similarity the raw float32 score. numpy formats a float32
scalar in an f-string through Python's ``float``, so the starter writes the float32 value's
double repr (``3.1415927410125732``, not 4 decimals); we write the same bytes. Every id of the
split appears exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.io import write_text

HEADERS = {
    "sst": "Predicted_Sentiment",
    "cfimdb": "Predicted_Sentiment",
    "para": "Predicted_Is_Paraphrase",
    "sts": "Predicted_Similiary",  # sic: the official code's spelling
}


def header_for(task: str, task_type: str) -> str:
    return HEADERS.get(task, "Predicted_Score" if task_type == "regression" else "Predicted_Label")


def format_prediction(task: str, task_type: str, value: float) -> str:
    if task_type == "regression":
        # The starter's f"{np.float32}" is repr(float(x)) of the float32 score: full digits.
        return repr(float(np.float32(value)))
    if task == "para":
        return f"{float(int(value))}"
    return f"{int(value)}"


def render_predictions(task: str, task_type: str, ids: Sequence[str],
                       preds: np.ndarray) -> str:
    lines = [f"id \t {header_for(task, task_type)} \n"]
    lines += [f"{i} , {format_prediction(task, task_type, p)} \n"
              for i, p in zip(ids, preds, strict=True)]
    return "".join(lines)


def check_coverage(task: str, split: str, expected: Sequence[str], got: Sequence[str]) -> None:
    """Every expected id exactly once, nothing else: an incomplete submission is an error."""
    if len(set(got)) != len(got):
        raise UserError(f"{task}-{split}: duplicate ids in predictions")
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    if missing or extra:
        raise UserError(f"{task}-{split}: predictions miss {len(missing)} ids and have "
                        f"{len(extra)} unknown ids (e.g. {sorted(missing or extra)[:3]})")


def write_prediction_file(path: Path, task: str, task_type: str, ids: Sequence[str],
                          preds: np.ndarray) -> None:
    write_text(path, render_predictions(task, task_type, ids, preds))


def export_all(predictions_dir: Path, prepared: Path, tasks: dict[str, str],
               out_dir: Path, report_path: Path) -> dict[str, object]:
    """Write ``{task}-{split}-output.csv`` for every predicted split, checking id coverage
    against the prepared split; ``tasks`` maps task name -> type. Returns the export report."""
    import pyarrow.parquet as pq

    from pipeline.io import atomic_path, read_json, write_json

    prep_report = read_json(prepared / "report.json")
    recovered: dict[tuple[str, str], int] = {}
    for f in prep_report["files"]:
        key = (f["task"], f["split"])
        recovered[key] = recovered.get(key, 0) + len(f["recovered_lines"])
    files: dict[str, object] = {}
    with atomic_path(out_dir) as staged:
        staged.mkdir(parents=True)
        for task, task_type in tasks.items():
            for split in ("dev", "test"):
                src = predictions_dir / f"{task}-{split}.parquet"
                if not src.is_file():
                    continue
                table = pq.read_table(src, columns=["id", "prediction"])
                ids = table.column("id").to_pylist()
                expected = pq.read_table(prepared / task / f"{split}.parquet",
                                         columns=["id"]).column("id").to_pylist()
                check_coverage(task, split, expected, ids)
                name = f"{task}-{split}-output.csv"
                write_prediction_file(staged / name, task, task_type, ids,
                                      table.column("prediction").to_numpy())
                files[name] = {"rows": len(ids),
                               "recovered_input_rows": recovered.get((task, split), 0)}
    report = {"files": files, "rows": sum(f["rows"] for f in files.values())}  # type: ignore[index]
    write_json(report_path, report)
    return report
