"""GPU variant of the training benchmark: bf16 autocast, ``torch.compile`` on and off.

    python -m benchmarks.perf_gpu [--encoder bert-base-uncased] [--steps 40] [--repeats 3]

Needs a CUDA device (exits with a message otherwise). Uses ``bert-base-uncased`` when it can
be loaded (hub cache or network), else falls back to ``minilm-l6`` and says so. On the real
CS224N data it times, alternating within each repeat, the pipeline's ``fit`` in fp32, in
bf16 and in bf16 with ``train.compile``, the naive starter-code loop (fp32) and the
raw-compute limit in bf16, and writes the ``perf-gpu`` section of benchmarks/results.md and
``benchmarks/results_gpu.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks import perf_train as pt
from benchmarks import write_section
from benchmarks.perf import bench_params
from pipeline.config import Params
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.model.encoder import load_tokenizer
from pipeline.model.stage_tokenizer import load_stage_tokenizer
from pipeline.train.run import build_model, load_split

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("fp32", "bf16", "bf16+compile", "naive", "limit-bf16")


def with_encoder(params: Params, name: str) -> Params:
    """``params`` on encoder ``name``, or on minilm-l6 when ``name`` cannot be loaded."""
    p = params.model_copy(update={"encoder": params.encoder.model_copy(update={"name": name})})
    try:
        load_tokenizer(p.encoder)
        return p
    except Exception as err:  # noqa: BLE001 - any load failure means: fall back
        print(f"cannot load {name} ({err}); using minilm-l6", file=sys.stderr)
        return params


def variant(params: Params, precision: str, compile_: bool) -> Params:
    train = params.train.model_copy(update={"precision": precision, "compile": compile_,
                                            "device": "cuda"})
    return params.model_copy(update={"train": train})


def ratio(med: dict[str, float], a: str, b: str) -> float | None:
    """``med[a] / med[b]`` rounded, or None when either contender was skipped."""
    return round(med[a] / med[b], 3) if a in med and b in med else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MTB_CS224N_DIR",
                                                     str(ROOT.parent / "shared/data/cs224n")))
    ap.add_argument("--encoder", default="bert-base-uncased")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS,
                    help="contenders not to time (e.g. bf16+compile: minutes of compiling)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks.perf_gpu needs a CUDA device; on a CPU run benchmarks.perf")
    device = torch.device("cuda")
    params = with_encoder(bench_params(str(Path(args.data).resolve()), False), args.encoder)
    work = ROOT / "benchmarks" / "work" / "perf-gpu"
    prepare(params, work / "prepared")
    tok = load_tokenizer(params.encoder)  # the naive contender's transformers calls
    tokenize_all(work / "prepared", work / "tok", params.tasks,
                 load_stage_tokenizer(params.encoder), params.tokenize,
                 params.encoder.name)
    pad_id = int(json.loads((work / "tok" / "meta.json").read_text())["pad_token_id"])
    model = build_model(params).to(device)
    state = pt.snapshot(model)
    sets = load_split(work / "tok", model.tasks, "train")
    tasks = pt.plan(params, {t: len(d) for t, d in sets.items()}, args.steps, params.seed)
    limit = pt.limit_batches(params, model, sets, args.steps, params.seed)
    counter = pt.TokenCounter(model.encoder)
    names = [n for n in CONTENDERS if n not in args.skip]
    runs: dict[str, list[pt.Run]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            m = pt.fresh(model, state)
            if name == "naive":
                loaders = pt.naive_loaders(work / "prepared", m, tok, params.tokenize.max_length,
                                           params.train.batch_size, "train", True, r)
                run = pt.run_naive(m, loaders, tasks, counter, device)
            elif name == "limit-bf16":
                run = pt.run_limit(m, variant(params, "bf16", False), limit, counter, device)
            else:
                p = variant(params, "bf16" if "bf16" in name else "fp32", "compile" in name)
                run = pt.run_fast(m, p, sets, args.steps, params.seed, pad_id, counter)
                if "compile" in name:  # back to eager for the next contender
                    model.encoder._compiled_call_impl = None  # type: ignore[attr-defined]
            runs[name].append(run)
            print(f"{name}: {run.examples_per_s:.1f} ex/s, padding efficiency "
                  f"{run.padding_efficiency:.3f}", flush=True)
    med = {n: statistics.median(x.examples_per_s for x in v) for n, v in runs.items()}
    res: dict[str, Any] = {
        "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": torch.cuda.get_device_name(), "encoder": params.encoder.name,
        "torch": torch.__version__,
        "command": "python -m benchmarks.perf_gpu " + " ".join(sys.argv[1:]),
        "steps": args.steps, "repeats": args.repeats,
        **{f"examples_per_s_{n}": round(v, 1) for n, v in med.items()},
        "bf16_vs_fp32": ratio(med, "bf16", "fp32"),
        "bf16_vs_naive": ratio(med, "bf16", "naive"),
        "bf16_compile_vs_naive": ratio(med, "bf16+compile", "naive"),
        "bf16_vs_limit": ratio(med, "bf16", "limit-bf16"),
        "compile_speedup": ratio(med, "bf16+compile", "bf16"),
    }
    (ROOT / "benchmarks" / "results_gpu.json").write_text(json.dumps(res, indent=2) + "\n")
    rows = "\n".join(f"| {n} | {med[n]:.1f} |" for n in names)
    ratios = "; ".join(f"{label}: " + (f"{res[key]}x" if res[key] is not None else "not timed")
                       for label, key in (("bf16 vs fp32", "bf16_vs_fp32"),
                                          ("bf16 vs naive", "bf16_vs_naive"),
                                          ("bf16 vs limit", "bf16_vs_limit"),
                                          ("compile speed-up", "compile_speedup"))) + "."
    title = f"{res['machine']}, torch {res['torch']}, {res['encoder']}"
    write_section("perf-gpu", f"""## Performance on a GPU ({title})

- date: {res['date']}; command: `{res['command'].strip()}`
- {args.steps} steps of batch {params.train.batch_size}, median of {args.repeats} repeats;
  `fit` includes its first steps (and, with compile, the compilation).

| loop | examples/s |
|---|---|
{rows}

{ratios}
""")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
