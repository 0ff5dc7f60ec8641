"""Dev scores of training ablations on the real CS224N data, under one short CPU budget.

    python -m benchmarks.training_ablations --data /work/shared/data/cs224n

Prepares and tokenizes a capped copy of the data once (benchmarks/work/, git-ignored), then
trains `minilm-l6` once per ablation (samplers round_robin / anneal / proportional with the
default single-task steps; loss combinations sum / pcgrad) with everything else fixed, and
writes benchmarks/results.md with the machine, date, command and dev scores. Library calls
only (no DVC), so each run is exactly `pipeline.train.run.train` on the same inputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks import cpu_model, write_section
from pipeline.config import parse_params
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.model.encoder import load_tokenizer
from pipeline.train.run import train

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS: list[tuple[str, dict[str, Any]]] = [
    ("sampler=round_robin", {"sampler": "round_robin"}),
    ("sampler=anneal", {"sampler": "anneal"}),
    ("sampler=proportional", {"sampler": "proportional"}),
    ("loss.combine=sum", {"loss": {"combine": "sum"}}),
    ("loss.combine=pcgrad", {"loss": {"combine": "pcgrad"}}),
]


def budget(data_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"].update(source="cs224n", dir=data_dir,
                       max_train_examples_per_task=args.train_rows,
                       max_dev_examples_per_task=args.dev_rows)
    raw["tokenize"]["max_length"] = 64
    raw["train"].update(epochs=args.epochs, batches_per_epoch=args.steps, batch_size=16,
                        lr=5e-5, threads=os.cpu_count(), log_every=10)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MTB_CS224N_DIR", "../shared/data/cs224n"))
    # No cap by default: with equal task sizes every size-based sampler (proportional, anneal,
    # temperature) degenerates to uniform and the comparison says nothing.
    ap.add_argument("--train-rows", type=int, default=None,
                    help="cap on train rows per task (default: all, natural task sizes)")
    ap.add_argument("--dev-rows", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40, help="batches per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    args = ap.parse_args()
    work = ROOT / "benchmarks" / "work"
    base = budget(str(Path(args.data).resolve()), args)
    params = parse_params(base)
    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tok", params.tasks, load_tokenizer(params.encoder),
                 params.tokenize, params.encoder.name)
    (work / "mlm").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, extra in ABLATIONS:
        raw = {**base, **{k: ({**base.get(k, {}), **v} if isinstance(v, dict) else v)
                          for k, v in extra.items()}}
        p = parse_params(raw)
        t0 = time.perf_counter()
        res = train(p, work / "tok", work / "mlm", work / "model", work / "live")
        secs = time.perf_counter() - t0
        d = res.best_dev
        rows.append(f"| {name} | {d['overall']:.4f} | {d['sst']['accuracy']:.3f} | "
                    f"{d['para']['accuracy']:.3f} | {d['sts']['pearson']:.3f} | "
                    f"{res.best_epoch} | {secs:.0f} |")
        print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    cmd = "python -m benchmarks.training_ablations " + " ".join(sys.argv[1:])
    text = f"""# Training ablations (CS224N, minilm-l6, CPU, short budget)

- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit}
- machine: {os.cpu_count()} CPUs ({cpu_model()}), torch threads {os.cpu_count()}; shared machine
- command: `{cmd.strip()}`
- budget: train rows per task: {args.train_rows or "all"}; dev rows per task: {args.dev_rows};
  {args.epochs} epoch(s) x {args.steps} batches of 16, lr 5e-5, max_length 64; all else
  as params.yaml (seed {params.seed}). The all-task combinations (sum, pcgrad) draw one
  batch of EVERY task per step, so they see ~4x the examples of the single-task samplers
  in the same step budget.
- dev scores of the best epoch (overall = mean of sst acc, para acc, (sts r + 1)/2). One seed
  and a tiny budget: differences of a point or two are noise.

| ablation | dev overall | sst acc | para acc | sts r | best epoch | seconds |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    section = text.replace("# Training ablations", "## Training ablations", 1)
    write_section("training-ablations", section, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
