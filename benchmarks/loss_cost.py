"""What a loss option costs per training step, as a ratio against the preset's own steps.

    python -m benchmarks.loss_cost                          # ~9 min on 2 idle CPU cores
    python -m benchmarks.loss_cost --steps 24 --repeats 1   # a smoke run

Why: the leaderboard preset must train within the hour on two CPU cores, and a loss option
that adds work to a step (R-Drop's second dropout draw of sst's rows) eats into that. A record run
says how long one run took on one machine; this says what the option costs against the
preset without it, on the same machine in the same run.

On the real CS224N data with ``cpu-long``'s params (minilm-l6, max_length 64, batches of 16,
the temperature sampler, bf16 autocast where the CPU has AMX), every arm trains ``--steps``
steps of the pipeline's own loop (:func:`pipeline.train.loop.fit`, no dev scoring) from the
same initial weights on the same drawn tasks and batches:

- ``none``: the loss options off (``cpu-long`` as it is);
- ``rdrop``: ``loss.rdrop: {sst: 1.0}`` (sst's batches stacked on themselves);
- ``in-batch``: ``loss.in_batch_negatives: {para: 1.0}`` (no extra pass);
- ``rdrop+in-batch``: both.

Beside the arms, the R-Drop pass itself on sst's own batches (forward and backward of the
model, no optimizer): the batch once, the batch twice in two passes (the plain way to get two
dropout draws), and the batch stacked on itself in one pass (what ``loss.rdrop`` does), each
as a ratio to the single pass.

Arms alternate inside every repeat (the order rotates), so a burst of load from other jobs
hits every arm of a repeat; an arm's ratio is its training seconds over ``none``'s in the
same repeat, and the median over repeats is reported with the machine and its load average.
Writes the ``loss-cost`` section of benchmarks/results.md and benchmarks/loss_cost.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import load_average, machine_facts, machine_line, write_section
from benchmarks import perf_train as pt
from benchmarks.recipe_variants import variant_params
from pipeline.config import LossConfig, Params, parse_params
from pipeline.data.batching import BatchStream, TaskData, collate, stack_twice
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize_all
from pipeline.model.multitask import MultitaskModel
from pipeline.model.stage_tokenizer import load_stage_tokenizer
from pipeline.precision import resolve_precision
from pipeline.train.run import build_model, load_split

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "benchmarks" / "loss_cost.json"
ARMS: dict[str, dict[str, Any]] = {
    "none": {"rdrop": {}, "in_batch_negatives": {}},
    "rdrop": {"rdrop": {"sst": 1.0}, "in_batch_negatives": {}},
    "in-batch": {"rdrop": {}, "in_batch_negatives": {"para": 1.0}},
    "rdrop+in-batch": {"rdrop": {"sst": 1.0}, "in_batch_negatives": {"para": 1.0}},
}


def arm_params(base: Params, loss: dict[str, Any]) -> Params:
    """``base`` with its loss options replaced by ``loss`` (validated as params are)."""
    return base.model_copy(update={"loss": LossConfig.model_validate(
        {**base.loss.model_dump(), **loss})})


def preset_params(data_dir: Path) -> Params:
    """``cpu-long``'s params, one epoch without averaging or WiSE-FT (the steps only)."""
    params = parse_params(variant_params("cpu-long", {}, data_dir))
    return params.model_copy(update={"train": params.train.model_copy(
        update={"average_last_epochs": None, "wise_ft_alpha": None})})


def measure(params: Params, work: Path, steps: int, repeats: int) -> dict[str, Any]:
    prepare(params, work / "prepared")
    tokenize_all(work / "prepared", work / "tok", params.tasks,
                 load_stage_tokenizer(params.encoder), params.tokenize, params.encoder.name)
    pad_id = int(json.loads((work / "tok" / "meta.json").read_text())["pad_token_id"])
    model = build_model(params)
    state = pt.snapshot(model)
    sets = load_split(work / "tok", model.tasks, "train")
    counter = pt.TokenCounter(model.encoder)
    arms = {name: arm_params(params, loss) for name, loss in ARMS.items()}
    tasks = pt.plan(params, {t: len(d) for t, d in sets.items()}, steps, params.seed)
    # Warm-up (allocator, thread pools, oneDNN kernels): a few steps of the heaviest arm.
    pt.run_fast(pt.fresh(model, state), arms["rdrop+in-batch"], sets, 2 * len(sets),
                params.seed, pad_id, counter)
    names = list(arms)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            run = pt.run_fast(pt.fresh(model, state), arms[name], sets, steps, params.seed,
                              pad_id, counter)
            seconds[name].append(run.seconds)
            cpu[name].append(run.cpu_seconds)
            print(f"repeat {r + 1}/{repeats} {name}: {steps / run.seconds:.2f} steps/s "
                  f"({run.seconds:.1f} s)", flush=True)
    rdrop_pass = pass_cost(pt.fresh(model, state), sets["sst"], params, pad_id,
                           batches=30, repeats=repeats)
    return {"steps": steps, "repeats": repeats, "seconds": seconds, "cpu_seconds": cpu,
            "ratio_to_none": _ratios(seconds, "none"), "cpu_ratio_to_none": _ratios(cpu, "none"),
            "steps_per_s": {n: round(steps / statistics.median(s), 2)
                            for n, s in seconds.items()},
            "task_shares": {t: round(tasks.count(t) / len(tasks), 3) for t in sets},
            "rdrop_pass": rdrop_pass,
            "precision": resolve_precision(params.train.precision, pt.CPU).name}


def _ratios(seconds: dict[str, list[float]], base: str) -> dict[str, float]:
    """Median over repeats of each arm's seconds over ``base``'s in the same repeat."""
    return {n: round(statistics.median(s / b for s, b in zip(v, seconds[base], strict=True)),
                     3)
            for n, v in seconds.items()}


def pass_cost(model: MultitaskModel, data: TaskData, params: Params, pad_id: int,
              batches: int, repeats: int) -> dict[str, float]:
    """``batches`` of sst's batches through forward and backward: ``twice`` (two passes) and
    ``stacked`` (one pass of the batch stacked on itself) as the median over ``repeats`` of
    their ratio to ``once`` in the same repeat, in wall seconds and (``cpu_``) in the
    process's CPU seconds, which leave out the time it waited for a core."""
    precision = resolve_precision(params.train.precision, pt.CPU)
    stream = BatchStream(len(data), params.train.batch_size, np.random.default_rng(0),
                         lengths=data.bucket_keys())
    drawn = [collate(data, next(stream), pad_id, False) for _ in range(batches)]
    model.train()

    def run(ways: int, stacked: bool) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for batch in drawn:
            model.zero_grad(set_to_none=True)
            with precision.autocast(pt.CPU):
                if stacked:
                    total = model("sst", stack_twice(batch)).float().sum()
                else:
                    total = sum(model("sst", batch).float().sum() for _ in range(ways))
            total.backward()
        return time.perf_counter() - start, time.process_time() - cpu

    run(1, False)  # warm-up
    ways = {"once": (1, False), "twice": (2, False), "stacked": (1, True)}
    wall: dict[str, list[float]] = {n: [] for n in ways}
    cpu: dict[str, list[float]] = {n: [] for n in ways}
    for r in range(repeats):
        for name in list(ways)[r % 3:] + list(ways)[: r % 3]:
            w, c = run(*ways[name])
            wall[name].append(w)
            cpu[name].append(c)
    out: dict[str, float] = {"batches": batches,
                             "once_seconds": round(statistics.median(wall["once"]), 2)}
    for kind, measured in (("", wall), ("cpu_", cpu)):
        ratios = _ratios(measured, "once")
        out[f"{kind}twice"] = ratios["twice"]
        out[f"{kind}stacked"] = ratios["stacked"]
    return out


def markdown(r: dict[str, Any]) -> str:
    shares = ", ".join(f"{t} {s:.0%}" for t, s in r["task_shares"].items())
    lines = [
        "## What a loss option costs per training step (cpu-long, CS224N, minilm-l6, CPU)",
        "",
        f"`{r['command']}` at {r['commit']} on {r['date']}; {r['machine']}, "
        f"{r['precision']}; load average "
        f"{r['load_average_start']} at the start, {r['load_average_end']} at the end.",
        "",
        f"Each arm trained {r['steps']} steps of the pipeline's loop from the same weights on "
        f"the same drawn tasks ({shares}) and batches, {r['repeats']} repeats with the order "
        "rotating; the ratio is the median over repeats of the arm's seconds over `none`'s in "
        "the same repeat.",
        "",
        "| arm | loss options | steps/s (median) | wall s / `none`'s | CPU s / `none`'s |",
        "|---|---|---|---|---|",
    ]
    for name, loss in ARMS.items():
        opts = ", ".join(f"{k}: {v}" for k, v in loss.items() if v) or "off"
        lines.append(f"| `{name}` | {opts} | {r['steps_per_s'][name]:.2f} | "
                     f"{r['ratio_to_none'][name]:.3f} | {r['cpu_ratio_to_none'][name]:.3f} |")
    p = r["rdrop_pass"]
    lines += ["", f"R-Drop's pass on {p['batches']} of sst's batches (forward and backward, "
              f"no optimizer; the batch once took {p['once_seconds']} s): two passes "
              f"{p['twice']:.3f} x the single pass's wall seconds ({p['cpu_twice']:.3f} x its "
              f"CPU seconds), the batch stacked on itself in one pass (what `loss.rdrop` runs) "
              f"{p['stacked']:.3f} x ({p['cpu_stacked']:.3f} x)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MTB_CS224N_DIR",
                                                     str(ROOT.parent / "shared/data/cs224n")))
    ap.add_argument("--steps", type=int, default=120, help="training steps per arm and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    ap.add_argument("--json", default=str(OUT_JSON))
    args = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as `fit` sets it on CPU
    torch.utils.deterministic.fill_uninitialized_memory = False
    facts, load_start = machine_facts(), load_average()
    t0 = time.perf_counter()
    params = preset_params(Path(args.data).resolve())
    res = measure(params, ROOT / "benchmarks" / "work" / "loss-cost", args.steps, args.repeats)
    res.update({
        "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": machine_line(facts), "machine_facts": facts,
        "load_average_start": load_start, "load_average_end": load_average(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "command": " ".join(["python -m benchmarks.loss_cost",
                             *(argv if argv is not None else sys.argv[1:])]).strip(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "benchmark_seconds": round(time.perf_counter() - t0, 1),
    })
    Path(args.json).write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    write_section("loss-cost", markdown(res), Path(args.out))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
