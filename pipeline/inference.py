"""Batched prediction with a trained multitask model (used by train, evaluate and predict)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.data.batching import TaskData, collate, eval_batches
from pipeline.model.multitask import MultitaskModel
from pipeline.precision import PRECISIONS, Precision


@dataclass
class Predictions:
    ids: list[str]
    pred: np.ndarray  # class index (int) or score (float), in the data's row order
    scores: np.ndarray | None  # class probabilities (N, C) for classification


@torch.inference_mode()
def predict(model: MultitaskModel, data: TaskData, batch_size: int, pad_id: int,
            device: torch.device, precision: Precision = PRECISIONS["fp32"]) -> Predictions:
    """Score ``data`` in length-sorted batches under ``precision``'s autocast (the model
    was trained under it, so dev scores during training and after it agree)."""
    spec = model.tasks[data.task]
    was_training = model.training
    model.eval()
    regression = spec.type == "regression"
    out = np.zeros(len(data), dtype=np.float64)
    probs = None if regression else np.zeros((len(data), spec.output_size), dtype=np.float64)
    for idx in eval_batches(data, batch_size):
        batch = {k: v.to(device) for k, v in collate(data, idx, pad_id, regression).items()
                 if k != "labels"}
        with precision.autocast(device):
            y = model(data.task, batch).float()
        if regression:
            out[idx] = y.cpu().numpy()
        else:
            p = torch.softmax(y, dim=-1).cpu().numpy()
            assert probs is not None
            probs[idx] = p
            out[idx] = p.argmax(-1)
    model.train(was_training)
    pred = out if regression else out.astype(np.int64)
    return Predictions(data.ids, pred, probs)
