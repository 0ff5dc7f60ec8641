"""STS-only check of the regression loss: MSE on the cosine against CoSENT, outside the pipeline.

Why it exists: CoSENT (Su 2022; sentence-transformers' ``CoSENTLoss``) is the loss the SBERT
docs recommend for STS, and the multitask recipe's sts plateaued at r ~0.875 under squared
error. Before adding it to the pipeline this script asks the narrow question on one task: the
default encoder fine-tuned on ``sts-train.csv`` alone (mean pooling, AdamW lr 5e-5, weight
decay 0.01, batches of 16, 10% linear warmup then linear decay, gradient clip 1.0, max_length
64), scored by the Pearson r of the raw cosine on ``sts-dev.csv``, with

- ``mse``: squared error of cos(u, v) to label / 5 (SBERT's ``CosineSimilarityLoss``);
- ``cosent``: log(1 + sum over pairs with y_i > y_j of exp(lambda (cos_j - cos_i))), lambda 20,
  the paper's definition over all ordered pairs of the batch;
- ``mse+cosent``: their sum.

Run one arm per core (``taskset -c N``, one torch thread):
``python -m benchmarks.sts_loss mse --seed 1 --epochs 1``. Results: README "Training recipe";
``benchmarks/sts-single-task.md`` (3 epochs on the preset's seeds: sts alone against the
multi-task preset). By default it reads the raw train file, dev-overlapping pairs included;
``--train-file data/prepared/sts/train.parquet`` reads the table the pipeline's ``prepare``
wrote instead, with those pairs dropped. ``--save DIR`` writes the fine-tuned encoder
(``save_pretrained``) for ``benchmarks/task_vector.py``.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy.stats import pearsonr

LOSSES = ("mse", "cosent", "mse+cosent")
DATA = Path(__file__).resolve().parents[1] / "data" / "cs224n"


def read_sts(path: Path) -> list[tuple[str, str, float]]:
    """(sentence 1, sentence 2, similarity) rows of a CS224N sts csv or a prepared parquet."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["text_a", "text_b", "label"]).to_pydict()
        return [(a, b, float(y)) for a, b, y in
                zip(table["text_a"], table["text_b"], table["label"], strict=True)]
    with path.open(newline="") as fh:
        return [(r["sentence1"], r["sentence2"], float(r["similarity"]))
                for r in csv.DictReader(fh, delimiter="\t")]


def cosent_loss(cos: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT over every ordered pair (i, j) of the batch with labels[i] > labels[j]."""
    diff = scale * (cos[None, :] - cos[:, None])  # diff[i, j] = scale * (cos_j - cos_i)
    ordered = diff[labels[:, None] > labels[None, :]]
    return torch.logsumexp(torch.cat([ordered.new_zeros(1), ordered]), 0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("loss", choices=LOSSES)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--train-file", type=Path, default=None,
                    help="sts train rows (csv or prepared parquet); default DATA/sts-train.csv")
    ap.add_argument("--save", type=Path, default=None,
                    help="write the fine-tuned encoder and tokenizer here")
    args = ap.parse_args(argv)

    from transformers import AutoModel, AutoTokenizer

    from pipeline.config import EncoderConfig
    from pipeline.model.encoder_source import resolve_encoder
    from pipeline.model.pooling import mean_pool

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    weights = resolve_encoder(EncoderConfig(name="minilm-l6")).path
    tok = AutoTokenizer.from_pretrained(weights)
    enc = AutoModel.from_pretrained(weights)
    train = read_sts(args.train_file or args.data_dir / "sts-train.csv")
    dev = read_sts(args.data_dir / "sts-dev.csv")

    def embed(sentences: list[str]) -> torch.Tensor:
        b = tok(sentences, padding=True, truncation=True, max_length=64, return_tensors="pt")
        return mean_pool(enc(**b).last_hidden_state, b["attention_mask"])

    def dev_r() -> float:
        enc.eval()
        preds: list[float] = []
        with torch.no_grad():
            for i in range(0, len(dev), 128):
                rows = dev[i:i + 128]
                preds += F.cosine_similarity(embed([r[0] for r in rows]),
                                             embed([r[1] for r in rows])).tolist()
        enc.train()
        return float(pearsonr(preds, [r[2] for r in dev])[0])

    steps = int(args.epochs * len(train) / 16)
    warm = int(0.1 * steps)
    opt = torch.optim.AdamW(enc.parameters(), lr=5e-5, weight_decay=0.01)

    def warmup_then_linear_decay(step: int) -> float:
        if step < warm:
            return step / max(warm, 1)
        return max(0.0, (steps - step) / max(steps - warm, 1))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_then_linear_decay)
    print(f"{args.loss} seed {args.seed}: step 0 dev r {dev_r():.4f}", flush=True)
    order: list[int] = []
    start = time.time()
    for step in range(1, steps + 1):
        if not order:
            order = list(range(len(train)))
            rng.shuffle(order)
        rows = [train[order.pop()] for _ in range(min(16, len(order)))]
        cos = F.cosine_similarity(embed([r[0] for r in rows]), embed([r[1] for r in rows]))
        labels = torch.tensor([r[2] for r in rows])
        loss = cos.new_zeros(())
        if "mse" in args.loss:
            loss = loss + F.mse_loss(cos, labels / 5)
        if "cosent" in args.loss:
            loss = loss + cosent_loss(cos, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % max(steps // 2, 1) == 0 or step == steps:
            print(f"{args.loss} seed {args.seed}: step {step} dev r {dev_r():.4f} "
                  f"({time.time() - start:.0f} s)", flush=True)
    if args.save is not None:
        enc.save_pretrained(args.save)
        tok.save_pretrained(args.save)


if __name__ == "__main__":
    main()
