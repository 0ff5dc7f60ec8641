"""Encoders and their tokenizers, loaded through transformers.

Which files a name stands for (built-in offline names, local folders, pinned hub ids) is
:mod:`pipeline.model.encoder_source`.
"""

from __future__ import annotations

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
from pipeline.model.encoder_source import BUILTIN_ENCODERS, hub_kwargs, one_line, resolve_encoder

TINY_RANDOM = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=128, max_position_embeddings=512)


def load_tokenizer(cfg: EncoderConfig) -> PreTrainedTokenizerBase:
    src = resolve_encoder(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(src.path, use_fast=True, **hub_kwargs(src, cfg))
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
        return AutoConfig.from_pretrained(src.path, **hub_kwargs(src, cfg))
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
    kw = hub_kwargs(src, cfg)
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
