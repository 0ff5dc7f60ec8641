"""One shared encoder, a head per task; save/load as safetensors + JSON.

A pair task is encoded siamese-style: each sentence on its own through the shared encoder,
then the pair head combines the two pooled vectors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from pipeline.config import ModelConfig, TaskConfig
from pipeline.model.heads import HEADS
from pipeline.model.pooling import POOLINGS

WEIGHTS = "model.safetensors"
MODEL_CONFIG = "model_config.json"
ENCODER_CONFIG = "encoder_config.json"


@dataclass(frozen=True)
class TaskSpec:
    """What the model needs to know of a task (a plain, JSON-serialisable copy of TaskConfig)."""

    name: str
    type: str
    pair: bool
    output_size: int
    head: str
    min_label: float
    max_label: float

    @classmethod
    def from_config(cls, name: str, cfg: TaskConfig, model: ModelConfig) -> TaskSpec:
        head = cfg.head or (model.pair_head if cfg.pair else model.single_head)
        return cls(name, cfg.type, cfg.pair, cfg.output_size, head, cfg.min_label, cfg.max_label)


class MultitaskModel(nn.Module):
    def __init__(self, encoder: PreTrainedModel, tasks: list[TaskSpec], model: ModelConfig,
                 encoder_name: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.tasks = {t.name: t for t in tasks}
        self.model_config = model
        self.encoder_name = encoder_name
        self.pool = POOLINGS[model.pooling]
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({
            t.name: HEADS[t.head](hidden, t.output_size, model.dropout, t.pair) for t in tasks
        })

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.pool(states, attention_mask)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, C) for classification, scores (B,) in the label range for regression."""
        spec = self.tasks[task]
        if spec.pair:
            u = self.embed(batch["a_input_ids"], batch["a_attention_mask"])
            v = self.embed(batch["b_input_ids"], batch["b_attention_mask"])
            out = self.heads[task](u, v)
        else:
            out = self.heads[task](self.embed(batch["input_ids"], batch["attention_mask"]))
        if spec.type == "regression":
            span = spec.max_label - spec.min_label
            return spec.min_label + span * torch.sigmoid(out.squeeze(-1))
        return out

    # -- persistence -------------------------------------------------------------------
    def save(self, out_dir: Path) -> None:
        """Write weights (safetensors) and everything needed to rebuild the model (JSON)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        save_model(self, str(out_dir / WEIGHTS))
        (out_dir / ENCODER_CONFIG).write_text(self.encoder.config.to_json_string(), "utf-8")
        meta = {
            "encoder_name": self.encoder_name,
            "model": self.model_config.model_dump(),
            "tasks": [asdict(t) for t in self.tasks.values()],
        }
        (out_dir / MODEL_CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                            "utf-8")

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> MultitaskModel:
        """Rebuild from a saved folder with no network and no original checkpoint."""
        meta = json.loads((model_dir / MODEL_CONFIG).read_text("utf-8"))
        enc_dict = json.loads((model_dir / ENCODER_CONFIG).read_text("utf-8"))
        enc_cfg = AutoConfig.for_model(enc_dict.pop("model_type"), **enc_dict)
        encoder = AutoModel.from_config(enc_cfg, attn_implementation="sdpa",
                                        add_pooling_layer=False)
        tasks = [TaskSpec(**t) for t in meta["tasks"]]
        model = cls(encoder, tasks, ModelConfig(**meta["model"]), meta["encoder_name"])
        load_model(model, str(model_dir / WEIGHTS), device=str(device))
        return model.to(device).eval()
