"""Loading the tokenizer as the tokenize stage uses it (:class:`pipeline.data.tokenize.
StageTokenizer`: the Rust ``tokenizers.Tokenizer`` and three facts of its transformers wrapper).

For the built-in encoders it is read straight from the checkpoint's ``tokenizer.json`` and
``tokenizer_config.json`` with the ``tokenizers`` library (0.1 s to import). Going through
``transformers.AutoTokenizer`` would import torch and most of transformers first (about 5 s of
CPU), which was most of the stage's time on small data and a cost paid by every experiment
that re-tokenizes. tests/unit/test_tokenize_fast.py pins that both built-ins load to the same
backend JSON, pad id, vocabulary size and truncation side as transformers gives, and that
the stage's output equals the transformers call on the real data.

Any other encoder (a local folder, a hub id) goes through transformers, which knows every
tokenizer class's quirks (a ``tokenizer_config.json`` that overrides the JSON's normaliser,
slow-only tokenizers, downloads); only then is the heavy import paid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer

from pipeline.config import EncoderConfig
from pipeline.data.tokenize import StageTokenizer
from pipeline.model.encoder_source import BUILTIN_ENCODERS, resolve_encoder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def from_transformers(tok: PreTrainedTokenizerBase) -> StageTokenizer:
    """The stage's view of a loaded transformers fast tokenizer (its backend, not a copy)."""
    return StageTokenizer(tok.backend_tokenizer, int(tok.pad_token_id), int(tok.vocab_size),
                          tok.truncation_side)


def _token_text(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


def from_files(folder: Path) -> StageTokenizer | None:
    """Read ``folder``'s tokenizer.json and tokenizer_config.json; None when either is missing
    or names no pad token the vocabulary holds."""
    files = folder / "tokenizer.json", folder / "tokenizer_config.json"
    if not all(f.is_file() for f in files):
        return None
    backend = Tokenizer.from_file(str(files[0]))
    config = json.loads(files[1].read_text(encoding="utf-8"))
    pad = _token_text(config.get("pad_token"))
    pad_id = backend.token_to_id(pad) if pad is not None else None
    if pad_id is None:
        return None
    return StageTokenizer(backend, pad_id, backend.get_vocab_size(with_added_tokens=False),
                          config.get("truncation_side", "right"))


def load_stage_tokenizer(cfg: EncoderConfig) -> StageTokenizer:
    """The tokenizer of ``cfg``'s encoder: built-ins from their files, the rest through
    transformers (:func:`pipeline.model.encoder.load_tokenizer`, its checks and errors)."""
    if cfg.name in BUILTIN_ENCODERS:
        direct = from_files(Path(resolve_encoder(cfg).path))
        if direct is not None:
            return direct
    from pipeline.model.encoder import load_tokenizer

    return from_transformers(load_tokenizer(cfg))
