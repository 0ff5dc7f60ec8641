"""One shared encoder (with optional per-task adapters), a head per task; save/load.

A pair task is encoded either ``siamese`` (each sentence on its own through the shared
encoder; the head compares the two vectors) or ``cross`` (one ``[CLS] a [SEP] b [SEP]``
sequence, so attention sees both sentences; far stronger for paraphrase and similarity).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from pipeline.config import ModelConfig, TaskConfig
from pipeline.model.adapters import AdapterSettings, adapter_task, install_adapters
from pipeline.model.heads import HEADS, Encoded, HeadSpec
from pipeline.model.pooling import POOLINGS
from pipeline.names import resolve_head

WEIGHTS = "model.safetensors"
MODEL_CONFIG = "model_config.json"
# Beside the weights, for `python -m pipeline predict`: the tokenizer and its settings.
TOKENIZER_DIR = "tokenizer"
INFERENCE_CONFIG = "inference.json"
ENCODER_CONFIG = "encoder_config.json"
PARAM_REPORT = "param_report.json"


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
    encoding: str | None = None  # single | siamese | cross (None: siamese for pairs)
    adapter_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.encoding is None:
            object.__setattr__(self, "encoding", "siamese" if self.pair else "single")
        if (self.encoding == "single") == self.pair:
            raise ValueError(f"task '{self.name}': encoding {self.encoding!r} does not fit "
                             f"a {'pair' if self.pair else 'single-sentence'} task")

    @property
    def siamese(self) -> bool:
        return self.encoding == "siamese"

    @classmethod
    def from_config(cls, name: str, cfg: TaskConfig, model: ModelConfig) -> TaskSpec:
        encoding = (cfg.encoding or model.pair_encoding) if cfg.pair else "single"
        head = cfg.head or (model.pair_head if encoding == "siamese" else model.single_head)
        head = resolve_head(head, cfg.type, cfg.output_size, encoding == "siamese")
        dropout = model.adapter_dropout if cfg.adapter_dropout is None else cfg.adapter_dropout
        return cls(name, cfg.type, cfg.pair, cfg.output_size, head, cfg.min_label, cfg.max_label,
                   encoding, dropout)


class MultitaskModel(nn.Module):
    def __init__(self, encoder: PreTrainedModel, tasks: list[TaskSpec], model: ModelConfig,
                 encoder_name: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.tasks = {t.name: t for t in tasks}
        self.model_config = model
        self.encoder_name = encoder_name
        self.pool = POOLINGS[model.pooling]
        settings = AdapterSettings(
            kind=model.adapter, tasks=tuple(self.tasks), pal_size=model.pal_size,
            rank=model.adapter_rank, alpha=model.lora_alpha,
            lora_targets=tuple(model.lora_targets),
            dropout={t.name: t.adapter_dropout for t in tasks})
        self.adapter_ctx, shared = install_adapters(encoder, settings)
        if shared is not None:
            self.adapters = shared
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({
            t.name: HEADS[t.head](HeadSpec(hidden, t.output_size, t.type, t.siamese,
                                           model.dropout, model.mlp_hidden, t.min_label,
                                           t.max_label))
            for t in tasks
        })

    def encode(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None,
               inputs_embeds: torch.Tensor | None = None) -> Encoded:
        """Token states and pooled vector, routed through ``task``'s adapters.

        ``inputs_embeds`` replaces the word-embedding lookup of ``input_ids`` (SMART perturbs
        the embeddings and runs the same model from them)."""
        self.adapter_ctx.task, self.adapter_ctx.mask = task, attention_mask
        try:
            states = self.encoder(input_ids=None if inputs_embeds is not None else input_ids,
                                  inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
        finally:
            self.adapter_ctx.task, self.adapter_ctx.mask = None, None
        return Encoded(states, attention_mask, self.pool(states, attention_mask))

    def encode_units(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[Encoded, Encoded]:
        """Both sides of a siamese pair batch from its distinct sentences (``pair_units``):
        each distinct sentence is encoded once, in length-sorted chunks, and the results are
        gathered back to the ``a`` and ``b`` rows."""
        parts = [self.encode(task, batch[f"u{k}_input_ids"], batch[f"u{k}_attention_mask"])
                 for k in range(len(batch)) if f"u{k}_input_ids" in batch]
        width = max(p.states.shape[1] for p in parts)
        states = torch.cat([F.pad(p.states, (0, 0, 0, width - p.states.shape[1]))
                            for p in parts])
        mask = torch.cat([F.pad(p.mask, (0, width - p.mask.shape[1])) for p in parts])
        pooled = torch.cat([p.pooled for p in parts])

        def side(rows: torch.Tensor) -> Encoded:
            return Encoded(states[rows], mask[rows], pooled[rows])

        return side(batch["a_unit"]), side(batch["b_unit"])

    def forward(self, task: str, batch: dict[str, torch.Tensor],
                embeds: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (B, C) for classification, scores (B,) in the label range for regression.

        ``embeds`` (column prefix -> word embeddings: ``a_``/``b_`` for siamese pairs, ``""``
        otherwise) runs the model from given embeddings instead of the token ids."""
        return self.score(task, *self.encode_inputs(task, batch, embeds))

    def encode_inputs(self, task: str, batch: dict[str, torch.Tensor],
                      embeds: dict[str, torch.Tensor] | None = None
                      ) -> tuple[Encoded, Encoded | None]:
        """The encoder's side of :meth:`forward`: both sentences of a siamese pair, else the
        one sequence (and None). A loss on the sentence vectors themselves (in-batch
        negatives) reads them from here without a second pass."""
        e = embeds or {}
        if self.tasks[task].siamese:
            if not e and "a_unit" in batch:
                return self.encode_units(task, batch)
            return (self.encode(task, batch["a_input_ids"], batch["a_attention_mask"],
                                inputs_embeds=e.get("a_")),
                    self.encode(task, batch["b_input_ids"], batch["b_attention_mask"],
                                inputs_embeds=e.get("b_")))
        return self.encode(task, batch["input_ids"], batch["attention_mask"],
                           batch.get("token_type_ids"), inputs_embeds=e.get("")), None

    def score(self, task: str, a: Encoded, b: Encoded | None = None) -> torch.Tensor:
        """The head's side of :meth:`forward`: logits, or regression scores in the label
        range."""
        spec = self.tasks[task]
        out = self.heads[task](a, b)
        if spec.type == "regression":
            out = out.squeeze(-1)
            if not HEADS[spec.head].direct_score:
                out = spec.min_label + (spec.max_label - spec.min_label) * torch.sigmoid(out)
        return out

    # -- reporting ---------------------------------------------------------------------
    def param_report(self) -> dict[str, Any]:
        """Parameter counts per component (the PAL report's point is parameter efficiency)."""
        encoder = heads = 0
        adapters: dict[str, int] = {t: 0 for t in self.tasks}
        per_head: dict[str, int] = {}
        trainable = 0
        for name, p in self.named_parameters():
            n = p.numel()
            trainable += n if p.requires_grad else 0
            task = adapter_task(name)
            if task is not None:
                adapters[task] += n
            elif name.startswith("heads."):
                t = name.split(".")[1]
                per_head[t] = per_head.get(t, 0) + n
                heads += n
            else:
                encoder += n
        total = encoder + heads + sum(adapters.values())
        return {"encoder": encoder, "heads": per_head, "heads_total": heads,
                "adapter": self.model_config.adapter, "adapters": adapters,
                "adapters_total": sum(adapters.values()), "total": total,
                "trainable": trainable}

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
        (out_dir / PARAM_REPORT).write_text(
            json.dumps(self.param_report(), indent=2, sort_keys=True) + "\n", "utf-8")

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
        missing, unexpected = load_model(model, str(model_dir / WEIGHTS), strict=False,
                                         device=str(device))
        # Models saved before linear heads standardised their input keep the identity.
        missing = [k for k in missing if not k.endswith((".input_mean", ".input_scale"))]
        if missing or unexpected:
            raise RuntimeError(f"{model_dir / WEIGHTS} does not match the model it describes: "
                               f"missing {missing}, unexpected {unexpected}")
        return model.to(device).eval()
