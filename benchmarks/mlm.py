"""MLM further pre-training vs none on the real CS224N data, under one short CPU budget.

    python -m benchmarks.mlm --data /work/shared/data/cs224n

Prepares and tokenizes the data once (benchmarks/work/, git-ignored; same budget as
benchmarks/training_ablations.py), runs the mlm stage's code on the train text with
`minilm-l6` for a fixed number of steps, then fine-tunes twice with the same step budget: on
the base encoder and on the MLM-tuned one. Writes the `mlm` section of benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import cpu_model, write_section
from benchmarks.training_ablations import budget
from pipeline.config import parse_params
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.io import write_json
from pipeline.mlm.run import run_mlm
from pipeline.model.encoder import load_tokenizer
from pipeline.train.run import train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MTB_CS224N_DIR", "../shared/data/cs224n"))
    ap.add_argument("--train-rows", type=int, default=None,
                    help="cap on train rows per task (default: all)")
    ap.add_argument("--dev-rows", type=int, default=500)
    ap.add_argument("--steps", type=int, default=60, help="fine-tuning batches per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--mlm-steps", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    args = ap.parse_args()
    work = ROOT / "benchmarks" / "work" / "mlm"
    base = budget(str(Path(args.data).resolve()), args)
    base["mlm"].update(enabled=True, max_steps=args.mlm_steps, batch_size=32, lr=5e-5,
                       max_length=64)
    params = parse_params(base)
    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tok", params.tasks, load_tokenizer(params.encoder),
                 params.tokenize, params.encoder.name)
    no_mlm = work / "no-mlm"
    no_mlm.mkdir(parents=True, exist_ok=True)
    with_mlm = work / "with-mlm"
    with_mlm.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest, mlm_metrics = run_mlm(params, work / "prepared", with_mlm, work / "mlm-live")
    mlm_secs = time.perf_counter() - t0
    write_json(with_mlm / "manifest.json", manifest)
    rows = []
    for name, mlm_dir, extra in (("no MLM", no_mlm, 0.0), ("MLM", with_mlm, mlm_secs)):
        t0 = time.perf_counter()
        res = train(params, work / "tok", mlm_dir, work / "model", work / "live")
        secs = time.perf_counter() - t0 + extra
        d = res.best_dev
        rows.append(f"| {name} | {d['overall']:.4f} | {d['sst']['accuracy']:.3f} | "
                    f"{d['para']['accuracy']:.3f} | {d['sts']['pearson']:.3f} | "
                    f"{res.best_epoch} | {secs:.0f} |")
        print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    cmd = "python -m benchmarks.mlm " + " ".join(sys.argv[1:])
    m = mlm_metrics
    text = f"""## MLM further pre-training vs none (CS224N, minilm-l6, CPU, short budget)

- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit}
- machine: {os.cpu_count()} CPUs ({cpu_model()}); shared machine, so seconds are indicative
- command: `{cmd.strip()}`
- MLM: {m['steps']} steps x 32 sentences (15% masked, 80/10/10), lr 5e-5, max_length 64, on
  {m['corpus_train_sentences']} distinct train sentences of sst/para/sts/cfimdb
  ({m['excluded_dev_test_overlap']} dropped because dev/test holds them); held-out slice of
  {m['corpus_heldout_sentences']} train sentences: MLM loss {m['heldout_loss_before']:.3f} ->
  {m['heldout_loss_after']:.3f}, perplexity {m['heldout_perplexity_before']:.1f} ->
  {m['heldout_perplexity_after']:.1f} (a fresh MLM head: minilm-l6 ships none).
- fine-tuning, identical for both rows: train rows per task {args.train_rows or "all"}, dev
  rows {args.dev_rows}; {args.epochs} epoch(s) x {args.steps} batches of 16, lr 5e-5,
  max_length 64, all else as params.yaml (seed {params.seed}). "seconds" includes the MLM
  stage for the MLM row.

| encoder | dev overall | sst acc | para acc | sts r | best epoch | seconds |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write_section("mlm", text, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
