"""Train rows that would leak into evaluation or count twice: found, dropped and recorded.

A train row whose text (a sentence, or a pair in either order) also occurs in the task's dev or
test split lets the model see an evaluation example while training, which inflates dev scores
and misleads model selection; a pair present twice in train only weighs that example double.
Texts are compared after normalisation (Unicode NFKC, casefold, whitespace collapsed and
stripped), so a copy that differs only in case, spacing or Unicode form still matches. Every
dropped row is returned with the reason and the row it matched: nothing vanishes silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Row = dict[str, object]
Key = tuple[str, ...]

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text as compared for overlap: NFKC, casefolded, whitespace collapsed and stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_key(row: Row, pair: bool) -> Key:
    """What makes two rows the same example: the sentence, or the unordered sentence pair
    (paraphrase and similarity are symmetric, so (a, b) and (b, a) are one example)."""
    a = normalise(str(row["text_a"]))
    if not pair:
        return (a,)
    b = normalise(str(row["text_b"] or ""))
    return (a, b) if a <= b else (b, a)


@dataclass
class Dropped:
    """One train row left out, what it collided with, and why."""

    row: Row
    kind: str  # "duplicate" | "overlap_dev" | "overlap_test"
    matched_split: str
    matched_file: str
    matched_line: int
    reason: str


def index_rows(rows: list[Row], pair: bool) -> dict[Key, Row]:
    """Key -> the first row with that text (the one a drop reason points at)."""
    index: dict[Key, Row] = {}
    for row in rows:
        index.setdefault(text_key(row, pair), row)
    return index


def drop_eval_overlap(train: list[Row], evals: dict[str, list[Row]],
                      pair: bool) -> tuple[list[Row], list[Dropped]]:
    """Train rows whose text is in any split of ``evals`` (split -> rows) removed; each removed
    row is counted against the first split (in ``evals`` order) it matched."""
    indexes = {split: index_rows(rows, pair) for split, rows in evals.items()}
    kept: list[Row] = []
    dropped: list[Dropped] = []
    what = "pair (either order)" if pair else "sentence"
    for row in train:
        key = text_key(row, pair)
        hits = [(split, index[key]) for split, index in indexes.items() if key in index]
        if not hits:
            kept.append(row)
            continue
        split, match = hits[0]
        also = "".join(f"; also in {s} at {m['file']}:{m['line']}" for s, m in hits[1:])
        dropped.append(Dropped(
            row, f"overlap_{split}", split, str(match["file"]), int(match["line"]),  # type: ignore[call-overload]
            f"{what} also in {split} at {match['file']}:{match['line']} (normalised text){also}"))
    return kept, dropped


def dedupe(rows: list[Row], pair: bool, split: str) -> tuple[list[Row], list[Dropped]]:
    """The first row of each text kept, later copies (same normalised text) dropped; a copy
    whose label differs says so in its reason."""
    first: dict[Key, Row] = {}
    kept: list[Row] = []
    dropped: list[Dropped] = []
    for row in rows:
        key = text_key(row, pair)
        if key not in first:
            first[key] = row
            kept.append(row)
            continue
        match = first[key]
        label = ("" if row["label"] == match["label"]
                 else f"; its label {row['label']} differs from {match['label']}")
        dropped.append(Dropped(
            row, "duplicate", split, str(match["file"]), int(match["line"]),  # type: ignore[call-overload]
            f"duplicate of {split} row {match['file']}:{match['line']} (same normalised "
            f"{'pair, either order' if pair else 'sentence'}){label}"))
    return kept, dropped
