"""Sentences -> padded, dynamically masked MLM batches.

The masking itself is transformers' ``DataCollatorForLanguageModeling`` (15% of tokens, of
which 80% [MASK] / 10% random / 10% kept by default; whole-word masking from the fast
tokenizer's offsets). Padding is done here because that collator cannot pad offset mappings;
padded positions are marked special, so they are never chosen for masking.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from pipeline.config import MlmConfig


@dataclass
class Encoded:
    """Tokenized sentences, unpadded: one list per sentence."""

    input_ids: list[list[int]]
    special: list[list[int]]  # 1 where the token is [CLS]/[SEP]/... (never masked)
    offsets: list[list[tuple[int, int]]] | None  # character spans, for whole-word masking

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tok: PreTrainedTokenizerBase, sentences: list[str], max_length: int,
           whole_word: bool) -> Encoded:
    enc = tok(sentences, truncation=True, max_length=max_length,
              return_special_tokens_mask=True, return_offsets_mapping=whole_word,
              return_attention_mask=False, return_token_type_ids=False)
    return Encoded(enc["input_ids"], enc["special_tokens_mask"],
                   enc["offset_mapping"] if whole_word else None)


def make_masker(tok: PreTrainedTokenizerBase, cfg: MlmConfig,
                seed: int) -> DataCollatorForLanguageModeling:
    """The library collator, seeded, used only for its masking."""
    with warnings.catch_warnings():
        # whole-word masking replaces by [MASK] only; params.yaml documents it
        warnings.filterwarnings("ignore", message="Random token replacement is not supported")
        masker = DataCollatorForLanguageModeling(
            tok, mlm=True, mlm_probability=cfg.mask_prob,
            mask_replace_prob=cfg.mask_replace_prob,
            random_replace_prob=cfg.random_replace_prob, whole_word_mask=cfg.whole_word,
            seed=seed)
    masker.create_rng()
    return masker


def collate(enc: Encoded, rows: list[int] | np.ndarray, pad_id: int,
            masker: DataCollatorForLanguageModeling) -> dict[str, torch.Tensor]:
    """Pad ``rows`` to their longest and mask them; labels are -100 except at masked tokens."""
    width = max(len(enc.input_ids[i]) for i in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    special = np.ones((len(rows), width), dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    offsets = np.zeros((len(rows), width, 2), dtype=np.int64) if enc.offsets else None
    for r, i in enumerate(rows):
        n = len(enc.input_ids[i])
        ids[r, :n] = enc.input_ids[i]
        special[r, :n] = enc.special[i]
        attention[r, :n] = 1
        if offsets is not None and enc.offsets is not None:
            offsets[r, :n] = enc.offsets[i]
    inputs, labels = masker.torch_mask_tokens(torch.from_numpy(ids), torch.from_numpy(special),
                                              offsets)
    return {"input_ids": inputs, "attention_mask": torch.from_numpy(attention),
            "labels": labels}
