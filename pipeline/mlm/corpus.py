"""The MLM corpus: every distinct train-split sentence of the configured tasks, minus any
sentence that also occurs in a dev or test split, split into a train part and a held-out part.

Dev and test text must never reach the encoder before it is evaluated on them, so the corpus
is built only from ``train.parquet`` files and, because the same sentence can occur in several
splits (Quora repeats questions), any train sentence equal to a dev or test sentence (after
case folding and whitespace normalisation) is dropped too and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import SPLITS, TaskConfig
from pipeline.errors import UserError
from pipeline.io import write_parquet


def normalise(sentence: str) -> str:
    """The form two sentences are compared in: case-folded, whitespace collapsed."""
    return " ".join(sentence.split()).casefold()


@dataclass(frozen=True)
class Corpus:
    train: list[str]
    heldout: list[str]
    excluded_eval_overlap: int  # distinct train sentences dropped because dev/test has them
    sources: dict[str, int]  # task -> distinct sentences it contributed

    def save(self, path: Path) -> None:
        """Write exactly the sentences used, with their part, for audit (and the leak test)."""
        write_parquet(path, pa.table({
            "text": self.train + self.heldout,
            "part": ["train"] * len(self.train) + ["heldout"] * len(self.heldout),
        }))


def split_sentences(prepared: Path, task: str, cfg: TaskConfig, split: str) -> Iterator[str]:
    """The non-empty sentences of one prepared split (both sides of a pair task)."""
    path = prepared / task / f"{split}.parquet"
    if not path.is_file():
        return
    columns = ["text_a", "text_b"] if cfg.pair else ["text_a"]
    for batch in pq.ParquetFile(path).iter_batches(columns=columns):
        for col in batch.columns:
            for text in col.to_pylist():
                if text and text.strip():
                    yield text


def _distinct(texts: Iterable[str], seen: set[str]) -> list[str]:
    out = []
    for text in texts:
        key = normalise(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def build_corpus(prepared: Path, tasks: dict[str, TaskConfig], heldout_fraction: float,
                 max_heldout: int, seed: int) -> Corpus:
    eval_text = {normalise(s) for task, cfg in tasks.items() for split in SPLITS
                 if split != "train" for s in split_sentences(prepared, task, cfg, split)}
    seen: set[str] = set()
    train_text: list[str] = []
    sources: dict[str, int] = {}
    excluded: set[str] = set()
    for task, cfg in tasks.items():
        fresh = _distinct(split_sentences(prepared, task, cfg, "train"), seen)
        kept = [s for s in fresh if normalise(s) not in eval_text]
        excluded.update(normalise(s) for s in fresh if normalise(s) in eval_text)
        sources[task] = len(kept)
        train_text.extend(kept)
    if len(train_text) < 2:
        raise UserError(f"mlm: the train splits under {prepared} hold {len(train_text)} usable "
                        "sentence(s) once dev/test sentences are removed; MLM needs at least 2")
    order = np.random.default_rng(seed).permutation(len(train_text))
    n_heldout = min(max_heldout, max(1, round(heldout_fraction * len(train_text))),
                    len(train_text) - 1)
    heldout = [train_text[i] for i in order[:n_heldout]]
    train = [train_text[i] for i in sorted(order[n_heldout:])]
    return Corpus(train, heldout, len(excluded), sources)
