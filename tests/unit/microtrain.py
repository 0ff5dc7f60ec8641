"""A micro multitask setup for fast training-loop tests: a 1-layer, 16-wide random BERT and
random token data whose labels follow from the tokens (so there is something to learn)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import BertConfig, BertModel

from pipeline.config import ModelConfig, TrainConfig
from pipeline.data.batching import Ragged, TaskData
from pipeline.model.multitask import MultitaskModel, TaskSpec

VOCAB = 40
TASKS = [
    TaskSpec("single", "classification", False, 3, "linear", 0.0, 5.0, "single"),
    TaskSpec("pair", "classification", True, 2, "sbert", 0.0, 5.0, "siamese"),
    TaskSpec("reg", "regression", True, 1, "sbert", 0.0, 5.0, "siamese"),
]


def micro_model(seed: int = 0, dropout: float = 0.1, **model: Any) -> MultitaskModel:
    """The micro model; ``model`` adds ModelConfig fields (e.g. ``adapter="lora"``)."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    encoder = BertModel(cfg, add_pooling_layer=False)
    return MultitaskModel(encoder, TASKS, ModelConfig(dropout=dropout, **model), "micro")


def _ragged(rng: np.random.Generator, n: int) -> Ragged:
    lens = rng.integers(3, 9, size=n)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return Ragged(rng.integers(5, VOCAB, size=int(offsets[-1])).astype(np.int32), offsets)


def micro_data(n: int = 48, seed: int = 0) -> dict[str, TaskData]:
    rng = np.random.default_rng(seed)
    out = {}
    for spec in TASKS:
        size = n + 8 * len(out)  # different sizes per task
        if spec.pair:
            a, b = _ragged(rng, size), _ragged(rng, size)
            cols = {"a_input_ids": a, "b_input_ids": b}
            first = a.values[a.offsets[:-1]]
        else:
            a = _ragged(rng, size)
            cols = {"input_ids": a}
            first = a.values[a.offsets[:-1]]
        if spec.type == "regression":
            labels = (first % 6).astype(np.float64) * 5 / 6
        else:
            labels = (first % spec.output_size).astype(np.float64)
        out[spec.name] = TaskData(spec.name, [str(i) for i in range(size)], labels, cols)
    return out


def micro_cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "device": "cpu",
                            "batches_per_epoch": 6, "log_every": 2, "eval_batch_size": 32}
    return TrainConfig(**{**base, **kw})


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
