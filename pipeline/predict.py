"""Predictions for users: a saved model folder + sentences (or a CSV/TSV file) -> labels.

Input goes through the same code as the pipeline's own dev/test data: ``tokenize_table``
with the tokenizer and ``max_length`` that train saved beside the weights, then
``inference.predict``, so a sentence scores exactly as ``evaluate`` scores it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import PreTrainedTokenizerBase

from pipeline.errors import UserError
from pipeline.inference import Predictions
from pipeline.model.multitask import MultitaskModel

TOKENIZER_DIR = "tokenizer"
INFERENCE_CONFIG = "inference.json"


@dataclass
class Predictor:
    model: MultitaskModel
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    device: torch.device


def load_predictor(model_dir: Path, device: str | None = None) -> Predictor:
    """Load model, tokenizer and tokenize settings from a folder the train stage wrote."""
    from transformers import AutoTokenizer

    from pipeline.io import read_json
    from pipeline.model.multitask import MODEL_CONFIG

    if not (model_dir / MODEL_CONFIG).is_file():
        raise UserError(f"no trained model in {model_dir} (expected {MODEL_CONFIG}); "
                        "run `dvc repro` first or pass --model")
    if not (model_dir / INFERENCE_CONFIG).is_file() or not (model_dir / TOKENIZER_DIR).is_dir():
        raise UserError(f"{model_dir} has no saved tokenizer ({TOKENIZER_DIR}/, "
                        f"{INFERENCE_CONFIG}); retrain it with this version (dvc repro)")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = MultitaskModel.load(model_dir, dev)
    tok = AutoTokenizer.from_pretrained(str(model_dir / TOKENIZER_DIR), local_files_only=True)
    cfg = read_json(model_dir / INFERENCE_CONFIG)
    return Predictor(model, tok, int(cfg["max_length"]), dev)


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
    tokenized = tokenize_table(table, cfg, predictor.tokenizer, predictor.max_length)
    data = task_data_from_table(tokenized, task, spec.encoding)
    pad = predictor.tokenizer.pad_token_id
    return predict(predictor.model, data, batch_size, int(pad or 0), predictor.device)


def describe(task: str, p: Predictions, row: int = 0) -> str:
    """One line for a person: the label or score, with the class probabilities."""
    if p.scores is None:
        return f"{task}: score {float(p.pred[row]):.4f}"
    probs = "  ".join(f"{c}={v:.3f}" for c, v in enumerate(p.scores[row]))
    return f"{task}: label {int(p.pred[row])}  (probabilities {probs})"


def read_input(path: Path, pair: bool) -> tuple[list[str], list[str], list[str] | None]:
    """ids, sentences (and second sentences for pairs) from a CSV or TSV file with a header:
    ``id,sentence`` or ``id,sentence1,sentence2`` (id optional: row numbers then)."""
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    header = [h.strip() for h in (first.split(delimiter) if first else [])]
    need = ["sentence1", "sentence2"] if pair else ["sentence"]
    missing = [c for c in need if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a "
                        f"{'pair' if pair else 'single-sentence'} task needs a header with "
                        f"{', '.join(['id', *need])} (found: {', '.join(header) or 'nothing'})")
    rows = [{(k or "").strip(): v for k, v in r.items()} for r in rows]
    ids = [r.get("id") or str(i) for i, r in enumerate(rows)] if "id" in header else \
        [str(i) for i in range(len(rows))]
    for i, r in enumerate(rows):
        if any(r.get(c) is None for c in need):
            raise UserError(f"{path}:{i + 2}: too few fields for columns {', '.join(need)}")
    a = [r[need[0]] for r in rows]
    b = [r["sentence2"] for r in rows] if pair else None
    return ids, a, b


def write_output(path: Path, p: Predictions) -> None:
    """``id,prediction`` plus ``p_0..p_{C-1}`` (class probabilities) for classification."""
    from pipeline.io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        n_cls = 0 if p.scores is None else p.scores.shape[1]
        w.writerow(["id", "prediction", *(f"p_{c}" for c in range(n_cls))])
        for i, row_id in enumerate(p.ids):
            pred = repr(float(p.pred[i])) if p.scores is None else str(int(p.pred[i]))
            probs = [] if p.scores is None else [repr(float(v)) for v in p.scores[i]]
            w.writerow([row_id, pred, *probs])
