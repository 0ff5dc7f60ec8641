"""Predictions for users: a saved model folder + sentences (or a CSV/TSV file) -> labels.

Input goes through the same code as the pipeline's own dev/test data: ``tokenize_table``
with the tokenizer and ``max_length`` that train saved beside the weights, then
``inference.predict``, so a sentence scores exactly as ``evaluate`` scores it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import PreTrainedTokenizerBase

from pipeline.device import select_device
from pipeline.errors import UserError
from pipeline.inference import Predictions
from pipeline.model.multitask import (
    INFERENCE_CONFIG,
    MODEL_CONFIG,
    TOKENIZER_DIR,
    MultitaskModel,
)
from pipeline.precision import Precision


@dataclass
class Predictor:
    model: MultitaskModel
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    device: torch.device
    precision: Precision  # the training's train.precision, resolved for ``device``


def load_predictor(model_dir: Path, device: str | None = None) -> Predictor:
    """Load model, tokenizer and tokenize settings from a folder the train stage wrote."""
    from transformers import AutoTokenizer

    from pipeline.io import read_json

    if not (model_dir / MODEL_CONFIG).is_file():
        raise UserError(f"no trained model in {model_dir} (expected {MODEL_CONFIG}); "
                        "run `dvc repro` first or pass --model")
    if not (model_dir / INFERENCE_CONFIG).is_file() or not (model_dir / TOKENIZER_DIR).is_dir():
        raise UserError(f"{model_dir} has no saved tokenizer ({TOKENIZER_DIR}/, "
                        f"{INFERENCE_CONFIG}); retrain it with this version (dvc repro)")
    dev = select_device(device or "auto", "device")
    model = MultitaskModel.load(model_dir, dev)
    tok = AutoTokenizer.from_pretrained(str(model_dir / TOKENIZER_DIR), local_files_only=True)
    cfg = read_json(model_dir / INFERENCE_CONFIG)
    return Predictor(model, tok, int(cfg["max_length"]), dev, model_precision(model_dir, dev))


def model_precision(model_dir: Path, device: torch.device) -> Precision:
    """The precision a saved model is scored in: its training's ``train.precision``
    (``auto`` resolved for ``device``; models saved before it was recorded: fp32)."""
    from pipeline.io import read_json
    from pipeline.precision import resolve_precision

    cfg = read_json(model_dir / INFERENCE_CONFIG)
    name = str(cfg.get("precision", "fp32"))
    return resolve_precision("auto" if name == "fp16" and device.type != "cuda" else name,
                             device)


def check_task(predictor: Predictor, task: str) -> None:
    if task not in predictor.model.tasks:
        raise UserError(f"unknown task '{task}'; this model has: "
                        f"{', '.join(predictor.model.tasks)}")


def predict_texts(predictor: Predictor, task: str, texts_a: Sequence[str],
                  texts_b: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                  batch_size: int = 128) -> Predictions:
    """Predict ``task`` for sentences (pairs: ``texts_a[i]`` with ``texts_b[i]``)."""
    from pipeline.config import TaskConfig
    from pipeline.data.batching import task_data_from_table
    from pipeline.data.tokenize import tokenize_table
    from pipeline.inference import predict
    from pipeline.model.stage_tokenizer import from_transformers

    check_task(predictor, task)
    spec = predictor.model.tasks[task]
    if spec.pair and texts_b is None:
        raise UserError(f"task '{task}' takes sentence pairs: give two sentences")
    if not spec.pair and texts_b is not None:
        raise UserError(f"task '{task}' takes single sentences: give one sentence")
    n = len(texts_a)
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "text_a": pa.array(list(texts_a), pa.string()),
                      "text_b": pa.array(list(texts_b) if texts_b is not None else [None] * n,
                                         pa.string()),
                      "label": pa.array(np.full(n, np.nan))})
    cfg = TaskConfig(type=spec.type, pair=spec.pair,  # type: ignore[arg-type]
                     num_labels=spec.output_size if spec.type == "classification" else None,
                     min_label=spec.min_label, max_label=spec.max_label)
    tokenized = tokenize_table(table, cfg, from_transformers(predictor.tokenizer),
                               predictor.max_length)
    data = task_data_from_table(tokenized, task, spec.encoding)
    pad = predictor.tokenizer.pad_token_id
    return predict(predictor.model, data, batch_size, int(pad or 0), predictor.device,
                   predictor.precision)


def describe(task: str, p: Predictions, row: int = 0) -> str:
    """One line for a person: the label or score, with the class probabilities."""
    if p.scores is None:
        return f"{task}: score {float(p.pred[row]):.4f}"
    probs = "  ".join(f"{c}={v:.3f}" for c, v in enumerate(p.scores[row]))
    return f"{task}: label {int(p.pred[row])}  (probabilities {probs})"


@dataclass
class InputChunk:
    """Up to ``chunk_rows`` consecutive rows of an input file."""

    ids: list[str]
    a: list[str]
    b: list[str] | None


def iter_input(path: Path, pair: bool, chunk_rows: int = 4096) -> Iterator[InputChunk]:
    """Stream ids and sentences (and second sentences for pairs) from a CSV or TSV file with a
    header ``id,sentence`` or ``id,sentence1,sentence2`` (id optional: row numbers then).

    The file is read row by row and handed out ``chunk_rows`` at a time, so memory stays bounded
    by the chunk, not the file: a file of any length can be scored. Blank lines are skipped.
    """
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    need = ["sentence1", "sentence2"] if pair else ["sentence"]
    with path.open(encoding="utf-8-sig", newline="") as f:
        try:
            first = f.readline()
        except UnicodeDecodeError:
            raise UserError(f"{path}:1: not UTF-8 text") from None
        delimiter = "\t" if "\t" in first else ","
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]
        missing = [c for c in need if c not in header]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a "
                            f"{'pair' if pair else 'single-sentence'} task needs a header with "
                            f"{', '.join(['id', *need])} (found: {', '.join(header) or 'nothing'})")
        id_col = header.index("id") if "id" in header else None
        cols = [header.index(c) for c in need]
        reader = csv.reader(f, delimiter=delimiter)
        chunk, n = InputChunk([], [], [] if pair else None), 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                raise UserError(f"{path}:{reader.line_num + 2}: not UTF-8 text") from None
            except csv.Error as err:
                raise UserError(f"{path}:{reader.line_num + 1}: {err}") from None
            if not row:
                continue
            if len(row) <= max(cols):
                raise UserError(f"{path}:{reader.line_num + 1}: too few fields for columns "
                                f"{', '.join(need)}")
            row_id = row[id_col] if id_col is not None and id_col < len(row) else ""
            chunk.ids.append(row_id or str(n))
            chunk.a.append(row[cols[0]])
            if chunk.b is not None:
                chunk.b.append(row[cols[1]])
            n += 1
            if len(chunk.ids) == chunk_rows:
                yield chunk
                chunk = InputChunk([], [], [] if pair else None)
        if chunk.ids:
            yield chunk


def _output_header(n_classes: int) -> list[str]:
    return ["id", "prediction", *(f"p_{c}" for c in range(n_classes))]


def _output_rows(p: Predictions) -> Iterator[list[str]]:
    for i, row_id in enumerate(p.ids):
        pred = repr(float(p.pred[i])) if p.scores is None else str(int(p.pred[i]))
        probs = [] if p.scores is None else [repr(float(v)) for v in p.scores[i]]
        yield [row_id, pred, *probs]


def predict_file(predictor: Predictor, task: str, src: Path, dst: Path, batch_size: int = 128,
                 chunk_rows: int = 4096) -> int:
    """Score every row of ``src`` into ``dst`` chunk by chunk; return the number of rows.

    Output: ``id,prediction`` plus ``p_0..p_{C-1}`` (class probabilities) for classification,
    one line per input row in input order. Written via a temporary file, so a failure halfway
    (a bad row, a kill) leaves no partial ``dst``.
    """
    from pipeline.io import atomic_path

    check_task(predictor, task)
    spec = predictor.model.tasks[task]
    n_classes = spec.output_size if spec.type == "classification" else 0
    n = 0
    with atomic_path(dst) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(_output_header(n_classes))
        for chunk in iter_input(src, spec.pair, chunk_rows):
            p = predict_texts(predictor, task, chunk.a, chunk.b, chunk.ids, batch_size)
            w.writerows(_output_rows(p))
            n += len(chunk.ids)
    return n
