"""Add a single-task fine-tune's task vector to the multitask model's encoder, score dev.

Why it exists: on the raw train file sts alone reached r 0.881-0.884 on the preset's seeds
where the multitask preset saves 0.873-0.878, which read as the other tasks' steps pulling the
shared encoder away from the geometry sts reads with a plain cosine. (That gap was mostly a dev
leak: on the prepared table sts alone scores 0.877; ``benchmarks/sts-single-task.md``.)
Two ways of merging a separately
fine-tuned encoder into the multitask one, both applied after training and to the encoder's
weights only (the multitask heads stay as saved):

- task arithmetic (Ilharco et al. 2023, "Editing models with task arithmetic", section 2): the
  task vector is ``tau = theta_sts - theta_0`` (fine-tuned minus pretrained weights) and the
  edited model is ``theta_mt + lam * tau``. The paper adds task vectors to the pretrained
  model; here they are added to a model that is already multitask-fine-tuned (the paper's
  section 4 adds vectors to fine-tuned models only for negation and analogies), so this is a
  deviation, named as such;
- a uniform-style soup of two endpoints (Wortsman et al. 2022, "Model soups"): ``(1 - beta) *
  theta_mt + beta * theta_sts``, which is task arithmetic with ``lam = beta`` minus ``beta``
  times the multitask vector.

The sts-only encoder comes from ``python -m benchmarks.sts_loss mse --epochs 3 --seed S
--train-file data/prepared/sts/train.parquet --save DIR``; ``theta_0`` is the encoder the
pipeline builds before training (the pretrained weights, ``build_model``). Run inside a
workspace that holds the trained model (after ``dvc exp apply``) with its ``params.yaml``::

    python -m benchmarks.task_vector --sts-encoder DIR --arith 0.25,0.5,1 --soup 0.25,0.5 \
        --out results/task_vector.json

Results: ``benchmarks/task-vector.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from pipeline.config import load_params
from pipeline.train.run import build_model, read_mlm_manifest
from pipeline.wise_ft_sweep import open_saved_model, row_line

ENCODER_PREFIX = "encoder."


def encoder_task_vector(finetuned: Mapping[str, torch.Tensor],
                        pretrained: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``finetuned - pretrained`` for every floating weight the two share, keyed as the
    multitask model keys its encoder (``encoder.`` + the Hugging Face name). A weight of the
    multitask encoder the fine-tune lacks (an adapter) gets no vector; a shape mismatch is an
    error, since it means the two started from different encoders."""
    vector: dict[str, torch.Tensor] = {}
    for name, weight in pretrained.items():
        if not name.startswith(ENCODER_PREFIX) or not weight.is_floating_point():
            continue
        hf_name = name[len(ENCODER_PREFIX):]
        if hf_name not in finetuned:
            continue
        tuned = finetuned[hf_name]
        if tuned.shape != weight.shape:
            raise ValueError(f"{hf_name}: fine-tuned shape {tuple(tuned.shape)} differs from "
                             f"the pipeline's {tuple(weight.shape)}: not the same encoder")
        vector[name] = tuned.to(weight) - weight
    if not vector:
        raise ValueError("the fine-tuned encoder shares no weight with the pipeline's encoder")
    return vector


def add_vector(weights: Mapping[str, torch.Tensor], vector: Mapping[str, torch.Tensor],
               scale: float) -> dict[str, torch.Tensor]:
    """``weights + scale * vector`` on the vector's keys, the rest unchanged."""
    return {name: (w + scale * vector[name].to(w)) if name in vector else w
            for name, w in weights.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sts-encoder", type=Path, required=True,
                    help="a fine-tuned encoder saved with save_pretrained")
    ap.add_argument("--model-dir", type=Path, default=Path("models/multitask"))
    ap.add_argument("--tokenized", type=Path, default=Path("data/tokenized"))
    ap.add_argument("--mlm-dir", type=Path, default=Path("models/mlm"))
    ap.add_argument("--arith", default="0.25,0.5,1", help="task-arithmetic scales (lam)")
    ap.add_argument("--soup", default="0.25,0.5", help="soup weights (beta) of the fine-tune")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    from transformers import AutoModel

    run = open_saved_model(load_params(Path("params.yaml")), args.model_dir, args.tokenized)
    saved = run.weights
    pretrained = build_model(run.params, read_mlm_manifest(args.mlm_dir),
                             args.mlm_dir).state_dict()
    tuned = AutoModel.from_pretrained(args.sts_encoder).state_dict()
    tau = encoder_task_vector(tuned, pretrained)
    towards_tuned = {k: tau[k] - (saved[k] - pretrained[k]) for k in tau}  # theta_sts - theta_mt

    arms: list[tuple[str, float, dict[str, torch.Tensor]]] = [("saved", 0.0, saved)]
    arms += [("arith", float(x), add_vector(saved, tau, float(x)))
             for x in args.arith.split(",") if x]
    arms += [("soup", float(x), add_vector(saved, towards_tuned, float(x)))
             for x in args.soup.split(",") if x]
    rows = []
    for kind, scale, weights in arms:
        began = time.time()
        rows.append({"kind": kind, "scale": scale, **run.row(weights)})
        print(row_line(f"{kind} {scale:g}", rows[-1]) + f" ({time.time() - began:.0f} s)",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model_dir),
                                    "sts_encoder": str(args.sts_encoder), "rows": rows},
                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
