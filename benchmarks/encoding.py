"""Benchmark: cross-encoding vs siamese encoding of sentence pairs on real STS data.

Trains ``minilm-l6`` on the CS224N STS train split under the same fixed budget (optimizer
steps x batch size) for each encoding and scores Pearson r on the full STS dev split.
Prepare and tokenize run once and are shared. Results go to stdout as JSON and, with
``--record``, into ``benchmarks/results.md``.

    python -m benchmarks.encoding --data-dir ../shared/data/cs224n --steps 150 --record
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path

import yaml

from benchmarks import cpu_model, write_section
from pipeline.config import deep_merge, parse_params
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.evaluate import evaluate_run
from pipeline.model.encoder import load_tokenizer
from pipeline.train.run import train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=150, help="optimizer steps per encoding")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "encoding"))
    ap.add_argument("--record", action="store_true", help="append to benchmarks/results.md")
    args = ap.parse_args()

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["tasks"] = {"sts": base["tasks"]["sts"]}
    common = {
        "data": {"source": "cs224n", "dir": str(Path(args.data_dir).resolve())},
        "encoder": {"name": "minilm-l6"},
        "train": {"epochs": 1, "batches_per_epoch": args.steps, "batch_size": args.batch_size,
                  "lr": args.lr, "threads": os.cpu_count()},
    }
    work = Path(args.work)
    params = parse_params(deep_merge(base, common))
    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tokenized", params.tasks,
                 load_tokenizer(params.encoder), params.tokenize, params.encoder.name)
    (work / "mlm").mkdir(parents=True, exist_ok=True)
    results = {}
    for encoding in ("siamese", "cross"):
        p = parse_params(deep_merge(base, deep_merge(common, {"model": {
            "pair_encoding": encoding, "pair_head": "sbert", "single_head": "linear"}})))
        start = time.perf_counter()
        train(p, work / "tokenized", work / "mlm", work / encoding / "model",
              work / encoding / "live")
        seconds = time.perf_counter() - start
        m = evaluate_run(work / encoding / "model", work / "tokenized", p.tasks, 128,
                         work / encoding / "metrics.json", work / encoding / "preds")
        results[encoding] = {"sts_dev_pearson": round(m["sts"]["pearson"], 4),
                             "sts_dev_spearman": round(m["sts"]["spearman"], 4),
                             "train_seconds": round(seconds, 1)}
        print(encoding, json.dumps(results[encoding]), flush=True)
    summary = {"benchmark": "encoding", "date": date.today().isoformat(),
               "machine": f"{os.cpu_count()} CPU cores, {cpu_model()}",
               "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
               "results": results,
               "cross_minus_siamese_pearson": round(results["cross"]["sts_dev_pearson"]
                                                   - results["siamese"]["sts_dev_pearson"], 4)}
    print(json.dumps(summary, indent=2))
    if args.record:
        lines = [
            f"## Cross vs siamese encoding on STS ({summary['date']})\n",
            f"Machine: {summary['machine']}. Encoder `minilm-l6`, CPU, task `sts` only, "
            f"{args.steps} optimizer steps of batch {args.batch_size} (lr {args.lr}), "
            "full STS dev split (863 pairs).\n",
            "Command: `python -m benchmarks.encoding --data-dir ../shared/data/cs224n "
            f"--steps {args.steps} --record`\n",
            "| encoding | sts dev Pearson | Spearman | train s |",
            "|---|---|---|---|",
        ]
        for enc, r in results.items():
            lines.append(f"| {enc} | {r['sts_dev_pearson']} | {r['sts_dev_spearman']} | "
                         f"{r['train_seconds']} |")
        lines.append(f"\ncross - siamese Pearson: {summary['cross_minus_siamese_pearson']:+}")
        write_section("encoding", "\n".join(lines))


if __name__ == "__main__":
    main()
