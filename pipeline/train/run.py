"""Train end to end from the tokenized data: load, build the model, fit, save the best."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.config import Params
from pipeline.data.batching import TaskData, load_task_data
from pipeline.io import atomic_path, read_json, write_json
from pipeline.model.encoder import load_encoder
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.train.loop import FitResult, fit


def load_split(tokenized: Path, specs: dict[str, TaskSpec], split: str) -> dict[str, TaskData]:
    """Each task's tokenized ``split``, with the columns its encoding needs."""
    out = {}
    for task, spec in specs.items():
        path = tokenized / task / f"{split}.parquet"
        if path.is_file():
            out[task] = load_task_data(path, task, spec.encoding)
    return out


def build_model(params: Params, mlm_manifest: dict[str, Any] | None = None) -> MultitaskModel:
    weights = (mlm_manifest or {}).get("weights_dir")
    encoder = load_encoder(params.encoder, params.seed, weights)
    specs = [TaskSpec.from_config(n, c, params.model) for n, c in params.tasks.items()]
    torch.manual_seed(params.seed)  # heads start the same whatever the encoder's init used
    return MultitaskModel(encoder, specs, params.model, params.encoder.name)


def save_inference_files(params: Params, meta: dict[str, Any], model_dir: Path) -> None:
    """Save the tokenizer and its settings beside the weights, so ``python -m pipeline
    predict`` tokenizes a user's sentence exactly as the tokenize stage did for training."""
    from pipeline.model.encoder import load_tokenizer
    from pipeline.predict import INFERENCE_CONFIG, TOKENIZER_DIR

    load_tokenizer(params.encoder).save_pretrained(str(model_dir / TOKENIZER_DIR))
    write_json(model_dir / INFERENCE_CONFIG, {
        "encoder": meta["encoder"], "max_length": int(meta["max_length"]),
        "pad_token_id": int(meta["pad_token_id"]),
    })


def train(params: Params, tokenized: Path, mlm_dir: Path, out_dir: Path,
          live_dir: Path) -> FitResult:
    from dvclive import Live

    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    meta = read_json(tokenized / "meta.json")
    manifest_path = mlm_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else None
    model = build_model(params, manifest)
    train_sets = load_split(tokenized, model.tasks, "train")
    dev_sets = load_split(tokenized, model.tasks, "dev")
    in_overall = {t for t, c in params.tasks.items() if c.in_overall}
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        result = fit(model, train_sets, dev_sets, params.train, params.sampler, params.seed,
                     int(meta["pad_token_id"]), in_overall, live,
                     eval_batch_size=params.train.eval_batch_size)
        live.summary["best_epoch"] = result.best_epoch
        live.summary["best_dev_overall"] = result.best_dev["overall"]
    with atomic_path(out_dir) as staged:
        model.cpu().save(staged)
        save_inference_files(params, meta, staged)
        write_json(staged / "train_summary.json", {
            "best_epoch": result.best_epoch, "best_dev": result.best_dev,
            "steps": result.steps, "history": result.history,
        })
    return result
