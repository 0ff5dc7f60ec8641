"""Reader and writer for the CS224N task files, with quarantine instead of silent loss.

The files are TAB-separated with CSV quoting, a header whose first column is an unnamed index,
and (for sst/cfimdb test-student files) an extra index column. Every row is one physical line,
so the reader parses line by line: a quote that never closes can only spoil its own line, never
swallow the lines after it (which a whole-file ``csv`` reader does). Every line read is either
kept or lands in the quarantine with its file, line number, field and reason. Test rows are
recovered whenever their id can be found, so every test id still gets a prediction.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.config import TaskConfig
from pipeline.errors import DataError, UserError

# A file name ending in OPTIONAL_MARK is optional: read when it is in data.dir, recorded as
# skipped in report.json when it is not (a folder holding only the course handout lacks the
# extra Quora file). Without the mark a missing file is an error.
OPTIONAL_MARK = "?"
BUILTIN_FILES: dict[str, dict[str, list[str]]] = {
    "sst": {s: [f"ids-sst-{n}.csv"] for s, n in
            (("train", "train"), ("dev", "dev"), ("test", "test-student"))},
    "cfimdb": {s: [f"ids-cfimdb-{n}.csv"] for s, n in
               (("train", "train"), ("dev", "dev"), ("test", "test-student"))},
    "para": {"train": ["quora-train.csv", f"quora-train-extra.csv{OPTIONAL_MARK}"],
             "dev": ["quora-dev.csv"], "test": ["quora-test-student.csv"]},
    "sts": {s: [f"sts-{n}.csv"] for s, n in
            (("train", "train"), ("dev", "dev"), ("test", "test-student"))},
}


def file_spec(spec: str) -> tuple[str, bool]:
    """``(file name, optional)`` of one entry of a task's file list (see OPTIONAL_MARK)."""
    if spec.endswith(OPTIONAL_MARK):
        return spec[: -len(OPTIONAL_MARK)], True
    return spec, False
TEXT_COLUMNS = {"sentence", "sentence1", "sentence2"}


@dataclass
class Issue:
    """One problem with one line: why it was quarantined (or, for test rows, recovered)."""

    file: str
    line: int
    field: str
    reason: str
    raw: str


@dataclass
class FileReport:
    file: str
    task: str
    split: str
    lines_read: int = 0
    kept: int = 0
    rejected: int = 0
    recovered: int = 0
    # Valid train rows that prepare leaves out (pipeline/data/overlap.py), so per file
    # kept + rejected + duplicate + overlap_dev + overlap_test == lines_read.
    duplicate: int = 0
    overlap_dev: int = 0
    overlap_test: int = 0

    @property
    def dropped(self) -> int:
        return self.duplicate + self.overlap_dev + self.overlap_test


@dataclass
class ReadResult:
    rows: list[dict[str, object]] = field(default_factory=list)
    rejected: list[Issue] = field(default_factory=list)
    recovered: list[Issue] = field(default_factory=list)
    report: FileReport | None = None

    def report_dict(self) -> dict[str, object]:
        assert self.report is not None
        d = asdict(self.report)
        d["recovered_lines"] = [{"line": i.line, "field": i.field, "reason": i.reason}
                                for i in self.recovered]
        return d


def _parse_line(text: str) -> list[str] | None:
    """Fields of one line with CSV quoting, or None when its quoting is broken."""
    try:
        return next(csv.reader([text], delimiter="\t", strict=True))
    except (csv.Error, StopIteration):
        return None


def _unquote_raw(value: str) -> str:
    if value.startswith('"'):
        value = value[1:]
        if value.endswith('"'):
            value = value[:-1]
        value = value.replace('""', '"')
    return value


@dataclass
class _Layout:
    n_fields: int
    id_idx: int
    text_idx: list[int]
    label_idx: int | None


def _layout(path: Path, header: list[str], task: str, cfg: TaskConfig, split: str) -> _Layout:
    names = [h.strip() for h in header]
    if "id" not in names:
        raise UserError(f"{path}:1: field 'id': header has no 'id' column; header is {names} "
                        "(expected the CS224N layout, e.g. '\\tid\\tsentence\\tsentiment')")
    wanted = ["sentence1", "sentence2"] if cfg.pair else ["sentence"]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise UserError(f"{path}:1: field '{missing[0]}': header lacks {missing} for "
                        f"{'pair' if cfg.pair else 'single-sentence'} task '{task}'; "
                        f"header is {names}")
    label_idx = None
    if split != "test":
        if cfg.label_column is not None:
            candidates = [cfg.label_column] if cfg.label_column in names else []
        else:
            candidates = [n for n in names if n and n != "id" and n not in TEXT_COLUMNS
                          and not n.replace(".", "").isdigit()]
        if len(candidates) != 1:
            raise UserError(f"{path}:1: field 'label': cannot tell the label column of task "
                            f"'{task}' from header {names}; set tasks.{task}.label_column")
        label_idx = names.index(candidates[0])
    return _Layout(len(names), names.index("id"), [names.index(w) for w in wanted], label_idx)


def _parse_label(raw: str, cfg: TaskConfig) -> tuple[float | None, str | None]:
    """(label, None) or (None, reason)."""
    try:
        value = float(raw.strip())
    except ValueError:
        return None, f"label {raw!r} is not a number"
    if math.isnan(value) or math.isinf(value):
        return None, f"label {raw!r} is not a finite number"
    if cfg.type == "classification":
        assert cfg.num_labels is not None
        if value != int(value) or not 0 <= value < cfg.num_labels:
            return None, f"label {raw!r} is not a class in 0..{cfg.num_labels - 1}"
        return float(int(value)), None
    if not cfg.min_label <= value <= cfg.max_label:
        return None, f"label {raw!r} is outside {cfg.min_label}..{cfg.max_label}"
    return value, None


def _data_lines(path: Path, task: str, split: str) -> list[bytes]:
    """The file's physical lines, header first; an empty file is a user error."""
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path}:1: file is empty (task '{task}', split '{split}')")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line does not start another one
    return lines


def _header_layout(path: Path, header_line: bytes, task: str, cfg: TaskConfig,
                   split: str) -> _Layout:
    header_text = header_line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    header = _parse_line(header_text)
    if header is None:
        raise UserError(f"{path}:1: header line has broken quoting: {header_text!r}")
    return _layout(path, header, task, cfg, split)


@dataclass
class _LineReader:
    """Reads the data lines of one file into ``result``: each line is kept, kept with a
    recovery note (test rows), or rejected with its reason; ``strict`` raises instead."""

    name: str
    layout: _Layout
    cfg: TaskConfig
    split: str
    strict: bool
    seen: dict[str, str]  # id -> 'file:line', across the files of a split
    result: ReadResult

    def problem(self, line_no: int, fld: str, reason: str, raw: str, *, keep: bool) -> None:
        if self.strict:
            raise DataError(self.name, line_no, fld, reason)
        (self.result.recovered if keep else self.result.rejected).append(
            Issue(file=self.name, line=line_no, field=fld, reason=reason, raw=raw))

    def read(self, line_no: int, raw_bytes: bytes) -> None:
        decoded = self._decode(line_no, raw_bytes.rstrip(b"\r"))
        if decoded is None:
            return
        text, recovered = decoded
        if not text.strip():
            self.problem(line_no, "line", "empty line", text, keep=False)
            return
        split_up = self._fields(line_no, text, recovered)
        if split_up is not None:
            self._keep(line_no, text, *split_up)

    def _decode(self, line_no: int, raw_bytes: bytes) -> tuple[str, str | None] | None:
        """(text, recovery note); invalid UTF-8 is rejected except in test files."""
        try:
            return raw_bytes.decode("utf-8"), None
        except UnicodeDecodeError as err:
            text = raw_bytes.decode("utf-8", errors="replace")
            reason = f"not valid UTF-8 at byte {err.start}"
            if self.split != "test":
                self.problem(line_no, "line", reason, text, keep=False)
                return None
            return text, reason

    def _fields(self, line_no: int, text: str, recovered: str | None
                ) -> tuple[list[str], str | None] | None:
        """The line's fields: CSV-parsed, else split on tabs when the count is right, else
        (test files) whatever the id and text are; None when the line is rejected."""
        n = self.layout.n_fields
        fields = _parse_line(text)
        if fields is not None and len(fields) == n:
            return fields, recovered
        raw_fields = text.split("\t")
        if len(raw_fields) == n:
            return [_unquote_raw(f) for f in raw_fields], "unbalanced quote (fields split on tabs)"
        id_idx = self.layout.id_idx
        if self.split == "test" and len(raw_fields) > id_idx and raw_fields[id_idx].strip():
            # Keep the id and whatever text there is: every test id needs a prediction.
            kept = [_unquote_raw(f) for f in raw_fields[:n]]
            return kept + [""] * (n - len(kept)), (f"expected {n} fields, found "
                                                   f"{len(raw_fields)}; kept the id, text may "
                                                   "be partial")
        got = len(fields) if fields is not None else len(raw_fields)
        self.problem(line_no, "line", f"expected {n} tab-separated fields, found {got}", text,
                     keep=False)
        return None

    def _keep(self, line_no: int, text: str, fields: list[str], recovered: str | None) -> None:
        """Check the id, the sentences and the label of a split line, then keep it."""
        cfg, layout = self.cfg, self.layout
        row_id = fields[layout.id_idx].strip()
        if not row_id or any(c.isspace() for c in row_id):
            self.problem(line_no, "id", f"id {row_id!r} is empty or has spaces", text,
                         keep=False)
            return
        if row_id in self.seen:
            self.problem(line_no, "id", f"duplicate id {row_id} (first at {self.seen[row_id]})",
                         text, keep=False)
            return
        texts = [fields[i].strip() for i in layout.text_idx]
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            col = (["sentence1", "sentence2"] if cfg.pair else ["sentence"])[empty[0]]
            if self.split != "test":
                self.problem(line_no, col, "empty sentence", text, keep=False)
                return
            recovered = recovered or "empty sentence"
        label = None
        if layout.label_idx is not None:
            label, reason = _parse_label(fields[layout.label_idx], cfg)
            if reason is not None:
                self.problem(line_no, "label", reason, text, keep=False)
                return
        if recovered is not None:
            self.problem(line_no, "line", recovered, text, keep=True)
            assert self.result.report is not None
            self.result.report.recovered += 1
        self.seen[row_id] = f"{self.name}:{line_no}"
        self.result.rows.append({"id": row_id, "text_a": texts[0],
                                 "text_b": texts[1] if cfg.pair else None,
                                 "label": label, "line": line_no, "file": self.name})


def read_task_file(
    path: Path,
    *,
    task: str,
    cfg: TaskConfig,
    split: str,
    strict: bool = False,
    seen_ids: dict[str, str] | None = None,
    display_name: str | None = None,
) -> ReadResult:
    """Read one CS224N-format file. ``seen_ids`` (id -> 'file:line') spans files of a split."""
    name = display_name or str(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path} (task '{task}', split '{split}')")
    report = FileReport(file=name, task=task, split=split)
    result = ReadResult(report=report)
    lines = _data_lines(path, task, split)
    layout = _header_layout(path, lines[0], task, cfg, split)
    reader = _LineReader(name, layout, cfg, split, strict,
                         seen_ids if seen_ids is not None else {}, result)
    for line_no, raw_bytes in enumerate(lines[1:], start=2):
        report.lines_read += 1
        reader.read(line_no, raw_bytes)
    report.kept = len(result.rows)
    report.rejected = len(result.rejected)
    assert report.kept + report.rejected == report.lines_read
    return result


def write_cs224n_file(
    path: Path,
    rows: list[dict[str, object]],
    *,
    task_pair: bool,
    label_column: str,
    with_labels: bool,
    test_student_layout: bool = False,
) -> None:
    """Write rows in the exact CS224N layout (used by the synthetic generator and tests)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    text_cols = ["sentence1", "sentence2"] if task_pair else ["sentence"]
    if test_student_layout:
        writer.writerow(["0", "", "id", *text_cols])
    else:
        writer.writerow(["", "id", *text_cols, *([label_column] if with_labels else [])])
    for i, row in enumerate(rows):
        texts = [row["text_a"], row["text_b"]] if task_pair else [row["text_a"]]
        if test_student_layout:
            writer.writerow([i + 1, float(i), row["id"], *texts])
            continue
        label = []
        if with_labels:
            y = row["label"]
            label = [f"{float(y)}" if label_column == "is_duplicate" else y]
        writer.writerow([i, row["id"], *texts, *label])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
