"""Further pre-train the encoder with masked-LM, measure held-out MLM loss before and after,
and save the encoder (safetensors + config + tokenizer) for ``train`` to load.

The checkpoint's own MLM head is used when it has one; otherwise (the built-in ``minilm-l6``
ships a bare encoder) a fresh head is initialised, with its decoder tied to the input
embeddings as in BERT, so it adds only a small transform and a bias.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForMaskedLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)
from transformers.utils import logging as hf_logging

from pipeline.config import EncoderConfig, MlmConfig
from pipeline.errors import UserError
from pipeline.mlm.corpus import Corpus
from pipeline.mlm.masking import Encoded, collate, encode, make_masker
from pipeline.model.encoder import encoder_config
from pipeline.model.encoder_source import hub_kwargs, resolve_encoder
from pipeline.model.freeze import decay_groups

ENCODER_DIR = "encoder"


@dataclass(frozen=True)
class MlmModel:
    model: PreTrainedModel
    head_from_checkpoint: bool  # False: a fresh head was initialised


def load_mlm_model(cfg: EncoderConfig, seed: int) -> MlmModel:
    """The encoder with an MLM head (the checkpoint's, or a fresh one tied to the embeddings)."""
    src = resolve_encoder(cfg)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized cls.predictions" is expected here
    try:
        if src.random_init:
            torch.manual_seed(seed)  # the same encoder weights as train's tiny-random
            model = AutoModelForMaskedLM.from_config(encoder_config(cfg),
                                                     attn_implementation="sdpa")
            fresh_head = True
        else:
            torch.manual_seed(seed)  # a fresh head starts the same on every run
            model, info = AutoModelForMaskedLM.from_pretrained(
                src.path, attn_implementation="sdpa", output_loading_info=True,
                use_safetensors=True, **hub_kwargs(src, cfg))
            fresh_head = any(not k.startswith(model.base_model_prefix + ".")
                             for k in info["missing_keys"])
    except (OSError, ValueError) as err:
        raise UserError(f"mlm: cannot load encoder '{cfg.name}' with a masked-LM head: "
                        f"{err}") from None
    finally:
        hf_logging.set_verbosity(previous)
    model.tie_weights()
    return MlmModel(model, not fresh_head)


def masked_lm_loss(model: PreTrainedModel, batch: dict[str, torch.Tensor],
                   device: torch.device) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens, projecting only those onto the vocabulary.

    The vocabulary projection is most of an MLM step's cost on a small encoder, and only the
    ~15% masked positions have a label, so the head runs on those rows alone. Models whose
    head is not the BERT (``cls``) or RoBERTa (``lm_head``) layout take the full forward.
    """
    labels = batch["labels"].to(device)
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:
        return model(input_ids=batch["input_ids"].to(device),
                     attention_mask=batch["attention_mask"].to(device), labels=labels).loss
    encoder = getattr(model, model.base_model_prefix)
    hidden = encoder(input_ids=batch["input_ids"].to(device),
                     attention_mask=batch["attention_mask"].to(device)).last_hidden_state
    chosen = labels != -100
    logits = head(hidden[chosen])
    return torch.nn.functional.cross_entropy(logits.float(), labels[chosen])


@dataclass(frozen=True)
class HeldOut:
    """Held-out batches masked once, so "before" and "after" are scored on the same masks."""

    batches: list[dict[str, torch.Tensor]]

    @classmethod
    def build(cls, enc: Encoded, batch_size: int, pad_id: int, masker: Any) -> HeldOut:
        rows = np.argsort([len(x) for x in enc.input_ids], kind="stable")
        return cls([collate(enc, rows[i:i + batch_size], pad_id, masker)
                    for i in range(0, len(rows), batch_size)])

    @torch.inference_mode()
    def loss(self, model: PreTrainedModel, device: torch.device) -> float:
        """Mean cross-entropy per masked token over the whole held-out slice."""
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        for batch in self.batches:
            n = int((batch["labels"] != -100).sum())
            if n == 0:
                continue
            total += float(masked_lm_loss(model, batch, device)) * n
            count += n
        model.train(was_training)
        if count == 0:
            raise UserError("mlm: the held-out slice got no masked token; raise "
                            "mlm.heldout_fraction or mlm.mask_prob")
        return total / count


@dataclass(frozen=True)
class MlmResult:
    steps: int
    loss_before: float
    loss_after: float
    head_from_checkpoint: bool
    seconds: float

    def metrics(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "heldout_loss_before": round(self.loss_before, 6),
            "heldout_loss_after": round(self.loss_after, 6),
            "heldout_perplexity_before": round(math.exp(self.loss_before), 4),
            "heldout_perplexity_after": round(math.exp(self.loss_after), 4),
            "head_from_checkpoint": self.head_from_checkpoint,
            "train_seconds": round(self.seconds, 1),
        }


def planned_steps(n_sentences: int, cfg: MlmConfig) -> int:
    per_epoch = math.ceil(n_sentences / cfg.batch_size)
    total = per_epoch * cfg.epochs
    return min(total, cfg.max_steps) if cfg.max_steps else total


Logger = Callable[[int, dict[str, float]], None]


def pretrain(corpus: Corpus, tok: PreTrainedTokenizerBase, enc_cfg: EncoderConfig,
             cfg: MlmConfig, seed: int, device: torch.device,
             log: Logger | None = None) -> tuple[PreTrainedModel, MlmResult]:
    """Masked-LM training on ``corpus.train``; held-out loss measured before and after."""
    pad_id = int(tok.pad_token_id)
    mlm = load_mlm_model(enc_cfg, seed)
    model = mlm.model.to(device)
    train_enc = encode(tok, corpus.train, cfg.max_length, cfg.whole_word)
    heldout = HeldOut.build(encode(tok, corpus.heldout, cfg.max_length, cfg.whole_word),
                            cfg.batch_size, pad_id, make_masker(tok, cfg, seed + 1))
    before = heldout.loss(model, device)

    masker = make_masker(tok, cfg, seed)  # dynamic: every batch draws fresh masks
    steps = planned_steps(len(train_enc), cfg)
    opt = torch.optim.AdamW(decay_groups(model.named_parameters(), cfg.weight_decay), lr=cfg.lr,
                            foreach=True)
    sched = get_linear_schedule_with_warmup(opt, round(cfg.warmup_ratio * steps), steps)
    rng = np.random.default_rng(seed)
    model.train()
    start = time.perf_counter()
    step, running, since = 0, torch.zeros((), device=device), 0
    while step < steps:
        at_epoch_start = step
        order = rng.permutation(len(train_enc))
        for i in range(0, len(order), cfg.batch_size):
            batch = collate(train_enc, order[i:i + cfg.batch_size], pad_id, masker)
            if not (batch["labels"] != -100).any():
                continue  # nothing masked (tiny batch of short rows): no signal
            loss = masked_lm_loss(model, batch, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            running += loss.detach()
            since += 1
            if log is not None and (step % cfg.log_every == 0 or step == steps):
                log(step, {"train/loss": float(running) / since, "lr": sched.get_last_lr()[0]})
                running.zero_()
                since = 0
            if step >= steps:
                break
        if step == at_epoch_start:
            raise UserError("mlm: a whole pass over the corpus masked no token; raise "
                            "mlm.mask_prob or add text")
    seconds = time.perf_counter() - start
    after = heldout.loss(model, device)
    return model, MlmResult(step, before, after, mlm.head_from_checkpoint, seconds)


def save_encoder(model: PreTrainedModel, tok: PreTrainedTokenizerBase, out: Path) -> Path:
    """The encoder alone (no MLM head), as safetensors + config, with its tokenizer."""
    encoder = getattr(model, model.base_model_prefix)
    encoder.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return out
