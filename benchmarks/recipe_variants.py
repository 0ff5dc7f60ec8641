"""Recipe variants side by side: a budget plus overrides per variant, run through the
pipeline's own stages (prepare, tokenize, mlm, train, evaluate) outside DVC, all at once.

    python -m benchmarks.recipe_variants --out /tmp/rv \\
        'ref=cpu-long' 'temp5=cpu-long:train.sampler_temperature=5' \\
        'bf16=cpu-long:train.device=cuda,train.precision=bf16'

For recipe questions that a DVC experiment per arm would answer more slowly: on a GPU machine
several variants share the device (each its own process); on a CPU give each arm its own
core (``--threads 1`` and ``taskset``). Each variant gets a work folder under ``--out``
holding a ``params.yaml`` (the project's, then the budget's ``set``, then the variant's
``key=value`` changes, validated like ``dvc exp run -S``) and links to the code and the data;
variants whose data params agree share one prepared and tokenized copy. Writes
``variants.json`` (per variant: the overrides, seconds per stage, the dev curve per epoch from
``train_summary.json``, the final dev scores, or the error) and ``variants.md`` (one table).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline.ablation_form import apply_overrides, read_params
from pipeline.ablations import named_budget_overrides
from pipeline.best_run import METRICS, TRAIN_SUMMARY, dev_curve, primary_scores
from pipeline.config import without_catalogue

ROOT = Path(__file__).resolve().parents[1]
DATA_SECTIONS = ("seed", "tasks", "data", "tokenize", "encoder")
TRAIN_STAGES = ("mlm", "train", "evaluate")
TASKS = ("sst", "para", "sts", "cfimdb")


def parse_variant(text: str) -> tuple[str, str | None, dict[str, str]]:
    """``name=budget:key=value,key=value`` (budget and changes optional) -> its parts."""
    name, _, rest = text.partition("=")
    budget, _, changes = rest.partition(":")
    overrides: dict[str, str] = {}
    for item in filter(None, changes.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"variant '{name}': '{item}' is not key=value")
        overrides[key.strip()] = value.strip()
    if not name.isidentifier():
        raise SystemExit(f"variant name '{name}' must be letters, digits and _")
    return name, budget or None, overrides


def variant_params(budget: str | None, changes: dict[str, str],
                   data_dir: Path) -> dict[str, Any]:
    raw = read_params(ROOT)
    overrides = named_budget_overrides(raw, budget, None)
    overrides["data.dir"] = str(data_dir)
    overrides.update(changes)
    return without_catalogue(apply_overrides(raw, overrides))


def stage_env(threads: int) -> dict[str, str]:
    """The environment of a stage process: ``threads`` torch threads, this project importable
    (before whatever PYTHONPATH already holds)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "PYTHONPATH": path}


def run_stages(work: Path, stages: tuple[str, ...], env: dict[str, str],
               taskset: str | None) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for stage in stages:
        cmd = [sys.executable, "-m", f"stages.{stage}"]
        if taskset:
            cmd = ["taskset", "-c", taskset, *cmd]
        start = time.perf_counter()
        with open(work / f"{stage}.log", "w") as log:
            proc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  check=False)
        seconds[stage] = round(time.perf_counter() - start, 1)
        if proc.returncode:
            tail = (work / f"{stage}.log").read_text()[-2000:]
            raise RuntimeError(f"stage {stage} failed in {work}:\n{tail}")
    return seconds


def link_project(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name in ("stages", "pipeline"):
        link = work / name
        if not link.exists():
            link.symlink_to(ROOT / name)


def data_folder(out: Path, params: dict[str, Any]) -> Path:
    """The prepared-and-tokenized copy shared by the variants whose data params agree."""
    key = hashlib.sha256(json.dumps({k: params.get(k) for k in DATA_SECTIONS},
                                    sort_keys=True, default=str).encode()).hexdigest()[:10]
    return out / f"data-{key}"


def run_variant(out: Path, name: str, params: dict[str, Any], threads: int,
                taskset: str | None) -> dict[str, Any]:
    shared = data_folder(out, params)
    work = out / name
    env = stage_env(threads)
    result: dict[str, Any] = {"name": name, "data": shared.name}
    try:
        link_project(work)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (work / "data").mkdir(exist_ok=True)
        for sub in ("prepared", "tokenized"):
            link = work / "data" / sub
            if not link.exists():
                link.symlink_to(shared / "data" / sub)
        start = time.perf_counter()
        seconds = run_stages(work, TRAIN_STAGES, env, taskset)
        result.update(seconds=seconds, wall_seconds=round(time.perf_counter() - start, 1),
                      curve=dev_curve(json.loads((work / TRAIN_SUMMARY).read_text())),
                      dev=primary_scores(json.loads((work / METRICS).read_text())))
    except Exception as err:  # noqa: BLE001 - one variant's failure must not stop the others
        result["error"] = str(err)
    return result


def prepare_data(out: Path, params: dict[str, Any], threads: int) -> None:
    shared = data_folder(out, params)
    if not (shared / "data/tokenized").is_dir():
        link_project(shared)
        (shared / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = stage_env(threads)
        run_stages(shared, ("prepare", "tokenize"), env, None)


def markdown(results: list[dict[str, Any]]) -> str:
    """One row per variant: its overrides, training seconds, the final dev scores (the best
    epoch's, which evaluate scores) and the dev overall of every epoch."""
    lines = ["| variant | overrides | train s | sst | para | sts r | cfimdb | overall | "
             "overall per epoch |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['overrides']} | failed | | | | | | |")
            continue
        d = r["dev"]
        cells = [f"{d[t]:.3f}" if t in d else "" for t in (*TASKS, "overall")]
        epochs = " ".join(f"{c['dev'].get('overall', float('nan')):.4f}" for c in r["curve"])
        lines.append(f"| {r['name']} | {r['overrides']} | {r['seconds'].get('train', 0):.0f} | "
                     + " | ".join(cells) + f" | {epochs} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help="name=budget:key=value,key=value")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get(
        "MTB_CS224N_DIR", ROOT / "data/cs224n")))
    ap.add_argument("--threads", type=int, default=2, help="torch threads per variant")
    ap.add_argument("--cores", default=None,
                    help="taskset CPU lists separated by ';' (e.g. '0;1'), given to the "
                         "variants in turn (CPU runs)")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    specs = [parse_variant(v) for v in args.variants]
    params = {name: variant_params(budget, changes, args.data.resolve())
              for name, budget, changes in specs}
    cores = args.cores.split(";") if args.cores else [None] * len(specs)
    for name, _, _ in specs:
        prepare_data(out, params[name], max(args.threads, 2))
    with cf.ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(run_variant, out, name, params[name], args.threads,
                               cores[i % len(cores)])
                   for i, (name, _, _) in enumerate(specs)]
        results: list[dict[str, Any]] = []
        for future in cf.as_completed(futures):  # written as each ends: a killed run keeps some
            result = future.result()
            budget, changes = next((b, c) for n, b, c in specs if n == result["name"])
            result["overrides"] = " ".join([f"budget={budget}"] * bool(budget)
                                           + [f"{k}={v}" for k, v in changes.items()])
            results.append(result)
            (out / "variants.json").write_text(json.dumps(results, indent=1))
            (out / "variants.md").write_text(markdown(results))
            print(markdown(results[-1:]).splitlines()[-1], flush=True)
    shutil.rmtree(out / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
