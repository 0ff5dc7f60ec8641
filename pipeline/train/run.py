"""Train end to end from the tokenized data: load, build the model, fit, save the best.

With ``train.devices`` > 1 (and not already under torchrun) the stage spawns one process per
device; every process runs :func:`train_process` and only rank 0 logs, checkpoints and saves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from pipeline.config import Params, overall_tasks
from pipeline.data.batching import TaskData, load_task_data
from pipeline.device import select_device
from pipeline.io import atomic_path, read_json, write_json
from pipeline.model.encoder import load_encoder
from pipeline.model.multitask import MultitaskModel, TaskSpec
from pipeline.precision import resolve_precision
from pipeline.train import checkpoint as ckpt
from pipeline.train import distributed as dist
from pipeline.train.loop import FitResult, evaluate_sets, fit
from pipeline.train.wise_ft import apply_wise_ft, interpolate_weights


def load_split(tokenized: Path, specs: dict[str, TaskSpec], split: str) -> dict[str, TaskData]:
    """Each task's tokenized ``split``, with the columns its encoding needs."""
    out = {}
    for task, spec in specs.items():
        path = tokenized / task / f"{split}.parquet"
        if path.is_file():
            out[task] = load_task_data(path, task, spec.encoding)
    return out


def build_model(params: Params, mlm_manifest: dict[str, Any] | None = None,
                mlm_dir: Path | None = None) -> MultitaskModel:
    """The multitask model on the base encoder, or on the MLM stage's encoder when its
    manifest names one (``weights_dir``, relative to ``mlm_dir``)."""
    weights = (mlm_manifest or {}).get("weights_dir")
    if weights is not None and mlm_dir is not None:
        weights = str(mlm_dir / weights)
    encoder = load_encoder(params.encoder, params.seed, weights)
    specs = [TaskSpec.from_config(n, c, params.model) for n, c in params.tasks.items()]
    torch.manual_seed(params.seed)  # heads start the same whatever the encoder's init used
    return MultitaskModel(encoder, specs, params.model, params.encoder.name)


def fit_zero_shot_heads(model: MultitaskModel, params: Params, train_sets: dict[str, TaskData],
                        meta: dict[str, Any], device: torch.device) -> dict[str, str]:
    """The step-0 head fits of ``model.head_init: zero_shot`` (nothing for ``random``); what
    was done per task."""
    if params.model.head_init != "zero_shot":
        return {}
    from pipeline.model.head_init import init_heads_zero_shot

    return init_heads_zero_shot(model, train_sets, int(meta["pad_token_id"]), device,
                                params.model.head_init_rows, params.seed,
                                resolve_precision(params.train.precision, device))


def step0_model(params: Params, manifest: dict[str, Any] | None, mlm_dir: Path,
                train_sets: dict[str, TaskData], meta: dict[str, Any],
                device: torch.device) -> MultitaskModel:
    """The model as training started: built with the same seed, heads fitted zero-shot on
    the same train rows (WiSE-FT's ``theta_0``; rebuilt, not kept, so no copy of it is held
    through training)."""
    start = build_model(params, manifest, mlm_dir)
    fit_zero_shot_heads(start, params, train_sets, meta, device)
    return start


def read_mlm_manifest(mlm_dir: Path) -> dict[str, Any] | None:
    """The MLM stage's manifest, or None when the stage did not run (MLM off)."""
    path = mlm_dir / "manifest.json"
    return read_json(path) if path.is_file() else None


def mix_with_start(model: MultitaskModel, start: MultitaskModel, params: Params,
                   dev_sets: dict[str, TaskData], meta: dict[str, Any], device: torch.device,
                   in_overall: set[str], epoch_end_mean: dict[str, torch.Tensor] | None = None
                   ) -> dict[str, Any]:
    """WiSE-FT (``pipeline/train/wise_ft.py``): ``model`` becomes ``alpha * model + (1 -
    alpha) * start``; returns alpha and the mixed model's dev scores (the train summary's
    ``best_dev`` stays the trained model's).

    With ``epoch_end_mean`` (the epoch ends' own mean, kept beside a mean with points inside
    the epochs), that mean is mixed at the same alpha and scored too (``epoch_ends``): what
    the run would have saved without ``train.average_points_per_epoch``. ``start`` then
    holds that mix: it is not needed after."""
    alpha = float(params.train.wise_ft_alpha)  # type: ignore[arg-type]
    precision = resolve_precision(params.train.precision, device)

    def dev_of(mixed: MultitaskModel) -> dict[str, Any]:
        return evaluate_sets(mixed, dev_sets, params.train.eval_batch_size,
                             int(meta["pad_token_id"]), device, in_overall, precision)

    ends_mixed = (None if epoch_end_mean is None
                  else interpolate_weights(epoch_end_mean, start.state_dict(), alpha))
    apply_wise_ft(model, start, alpha)
    mixed = {"alpha": alpha, "dev": dev_of(model)}
    print(f"WiSE-FT alpha {alpha}: dev overall {mixed['dev']['overall']:.4f}")
    if ends_mixed is not None:
        with torch.no_grad():
            start.load_state_dict(ends_mixed)
        mixed["epoch_ends"] = {"dev": dev_of(start)}
        print(f"WiSE-FT alpha {alpha} of the epoch ends' own mean: dev overall "
              f"{mixed['epoch_ends']['dev']['overall']:.4f}")
    return mixed


def save_inference_files(params: Params, meta: dict[str, Any], model_dir: Path) -> None:
    """Save the tokenizer and its settings beside the weights, so ``python -m pipeline
    predict`` tokenizes a user's sentence exactly as the tokenize stage did for training."""
    from pipeline.model.encoder import load_tokenizer
    from pipeline.model.multitask import INFERENCE_CONFIG, TOKENIZER_DIR

    load_tokenizer(params.encoder).save_pretrained(str(model_dir / TOKENIZER_DIR))
    write_json(model_dir / INFERENCE_CONFIG, {
        "encoder": meta["encoder"], "max_length": int(meta["max_length"]),
        "pad_token_id": int(meta["pad_token_id"]),
        # train.precision as set (``auto`` is resolved again on the machine that predicts)
        "precision": params.train.precision,
    })


def run_fingerprint(params: Params, meta: dict[str, Any], sizes: dict[str, int],
                    code_root: Path = ckpt.PACKAGE) -> str:
    """What makes two runs the same trajectory: a checkpoint resumes only its own run, under
    the code that wrote it (``code_root``: the package sources hashed)."""
    ignore = {"resume", "checkpoint_every", "log_every", "threads", "eval_batch_size"}
    state = {
        "seed": params.seed, "sampler": params.sampler,
        "tasks": {t: c.model_dump() for t, c in params.tasks.items()},
        "encoder": params.encoder.model_dump(), "model": params.model.model_dump(),
        "train": {k: v for k, v in params.train.model_dump().items() if k not in ignore},
        "loss": params.loss.model_dump(), "meta": meta, "sizes": sizes,
    }
    run = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    return ckpt.compose_fingerprint({"run": run, "code": ckpt.code_digest(code_root)})


def will_resume(checkpoint_dir: Path | None, fingerprint: str, resume: str,
                log: bool = True) -> bool:
    """Whether training continues from a checkpoint; when one exists but belongs to another
    run or code, say so on stderr (else a fresh start after a code change looks like a bug)."""
    if checkpoint_dir is None or resume != "auto":
        return False
    if ckpt.latest(checkpoint_dir, fingerprint) is not None:
        return True
    reason = ckpt.explain_skip(checkpoint_dir, fingerprint)
    if reason and log:
        print(reason, file=sys.stderr, flush=True)
    return False


def train(params: Params, tokenized: Path, mlm_dir: Path, out_dir: Path, live_dir: Path,
          checkpoint_dir: Path | None = None) -> FitResult:
    """Train (spawning ``train.devices`` processes when asked) and save the best model."""
    ctx = dist.from_env()
    if params.train.devices > 1 and not ctx.active:
        dist.spawn(train_process, params.train.devices, params, tokenized, mlm_dir, out_dir,
                   live_dir, checkpoint_dir)
        summary = read_json(out_dir / "train_summary.json")
        return FitResult(summary["best_epoch"], summary["best_dev"], summary["history"],
                         summary["steps"], average=summary.get("average"))
    return train_process(params, tokenized, mlm_dir, out_dir, live_dir, checkpoint_dir)


def train_process(params: Params, tokenized: Path, mlm_dir: Path, out_dir: Path,
                  live_dir: Path, checkpoint_dir: Path | None = None) -> FitResult:
    """One training process (the only one, or one rank of a data-parallel run)."""
    import contextlib

    from dvclive import Live

    ctx = dist.from_env()
    dist.init(ctx, select_device(params.train.device).type)
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    meta = read_json(tokenized / "meta.json")
    manifest = read_mlm_manifest(mlm_dir)
    model = build_model(params, manifest, mlm_dir)
    train_sets = load_split(tokenized, model.tasks, "train")
    dev_sets = load_split(tokenized, model.tasks, "dev")
    in_overall = overall_tasks(params.tasks)
    fingerprint = run_fingerprint(params, {**meta, "mlm": manifest},
                                  {t: len(d) for t, d in train_sets.items()})
    resuming = will_resume(checkpoint_dir, fingerprint, params.train.resume, log=ctx.is_main)
    device = dist.device_for(ctx, select_device(params.train.device))
    head_init = {} if resuming else fit_zero_shot_heads(model, params, train_sets, meta, device)
    if ctx.is_main:
        for task, note in head_init.items():
            print(f"head init {task}: {note}")
    wise_ft: dict[str, Any] | None = None
    live_cm = (Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None,
                    resume=resuming)
               if ctx.is_main else contextlib.nullcontext())
    with live_cm as live:
        result = fit(model, train_sets, dev_sets, cfg=params.train, sampler=params.sampler,
                     seed=params.seed, pad_id=int(meta["pad_token_id"]),
                     in_overall=in_overall, live=live,
                     eval_batch_size=params.train.eval_batch_size, loss_cfg=params.loss,
                     checkpoint_dir=checkpoint_dir, fingerprint=fingerprint, dist_ctx=ctx)
        if params.train.wise_ft_alpha is not None and ctx.is_main:
            start = step0_model(params, manifest, mlm_dir, train_sets, meta, device)
            wise_ft = mix_with_start(model, start, params, dev_sets, meta, device, in_overall,
                                     result.epoch_end_mean)
        if live is not None:
            if wise_ft is not None:
                live.summary["wise_ft_dev_overall"] = wise_ft["dev"]["overall"]
            if result.average is not None:
                live.summary["average_dev_overall"] = result.average["dev"]["overall"]
            live.summary["best_epoch"] = result.best_epoch
            live.summary["best_dev_overall"] = result.best_dev["overall"]
            live.summary["train_seconds"] = round(result.seconds, 1)  # for the leaderboard
    if not ctx.is_main:
        return result
    with atomic_path(out_dir) as staged:
        model.cpu().save(staged)
        save_inference_files(params, meta, staged)
        write_json(staged / "train_summary.json", {
            "best_epoch": result.best_epoch, "best_dev": result.best_dev,
            "steps": result.steps, "history": result.history,
            "stopped_early": result.stopped_early, "resumed_from": result.resumed_from,
            "precision": result.precision, "head_init": head_init, "average": result.average,
            "wise_ft": wise_ft,
        })
    if checkpoint_dir is not None:
        ckpt.clear(checkpoint_dir)  # the run is done; its scratch state would only go stale
    return result
