"""The mlm stage's work: build the corpus, pre-train, save, report (or, disabled, a manifest
naming the base encoder).

torch and transformers are imported by the enabled path only: MLM is off by default, and the
disabled stage then starts in about a second instead of paying their import on every
``dvc repro`` (the stage deps still list those modules: see pipeline/stage_deps.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipeline.config import Params
from pipeline.mlm.corpus import build_corpus

CORPUS_FILE = "corpus.parquet"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_mlm(params: Params, prepared: Path, out_dir: Path,
            live_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fill ``out_dir``; return the manifest (what ``train`` loads) and the DVC metrics.

    The manifest's ``weights_dir`` is relative to ``out_dir``; ``None`` means the base encoder.
    """
    base = {"encoder": params.encoder.name, "revision": params.encoder.revision}
    cfg = params.mlm
    if not cfg.enabled:
        print(f"mlm disabled: train uses the base encoder '{params.encoder.name}'")
        return {"enabled": False, **base, "weights_dir": None}, {"enabled": False}
    return _pretrain_and_save(params, prepared, out_dir, live_dir, base)


def _pretrain_and_save(params: Params, prepared: Path, out_dir: Path, live_dir: Path,
                       base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from dvclive import Live

    from pipeline.device import select_device
    from pipeline.mlm.pretrain import ENCODER_DIR, pretrain, save_encoder
    from pipeline.model.encoder import load_tokenizer

    cfg = params.mlm

    corpus = build_corpus(prepared, params.tasks, cfg.heldout_fraction,
                          cfg.max_heldout_sentences, params.seed)
    corpus.save(out_dir / CORPUS_FILE)
    print(f"mlm corpus: {len(corpus.train)} train + {len(corpus.heldout)} held-out sentences "
          f"from {corpus.sources}; {corpus.excluded_eval_overlap} dropped (also in dev/test)")
    tok = load_tokenizer(params.encoder)
    device = select_device(cfg.device, "mlm.device")
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        def log(step: int, values: dict[str, float]) -> None:
            live.step = step
            for name, value in values.items():
                live.log_metric(name, value)
            live.make_summary()

        model, result = pretrain(corpus, tok, params.encoder, cfg, params.seed, device, log)
        metrics = {"enabled": True, **result.metrics(),
                   "corpus_train_sentences": len(corpus.train),
                   "corpus_heldout_sentences": len(corpus.heldout),
                   "excluded_dev_test_overlap": corpus.excluded_eval_overlap,
                   "seconds": round(result.seconds, 1)}
        live.summary.update(metrics)
    save_encoder(model.cpu(), tok, out_dir / ENCODER_DIR)
    print(f"mlm: {result.steps} steps in {result.seconds:.0f}s; held-out perplexity "
          f"{metrics['heldout_perplexity_before']} -> {metrics['heldout_perplexity_after']}")
    manifest = {"enabled": True, **base, "weights_dir": ENCODER_DIR,
                "weights_sha256": _sha256(out_dir / ENCODER_DIR / "model.safetensors")}
    return manifest, metrics
