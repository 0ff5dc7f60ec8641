"""``python -m pipeline`` / ``mtbert``: the user commands around the DVC pipeline.

- ``leaderboard``: ``leaderboard.csv`` from ``dvc exp show --json`` (one row per experiment);
- ``predict``: labels or scores for sentences or a CSV/TSV file, with a trained model folder;
- ``submit``: zip the CS224N prediction files for upload;
- ``ablate``: run named ablations of params.yaml under a budget as cached DVC experiments;
- ``ablation-table``: ``benchmarks/ablations.md`` (intervals over seeds and dev rows, a forest
  plot) from the experiments' dev predictions in DVC and the reports' claims;
- ``record-best``: ``benchmarks/best.json`` from the leaderboard preset's run in the workspace;
- ``wise-ft-sweep``: dev scores of the trained model's WiSE-FT mix at other alphas, without
  training again.

User errors (missing model, unknown task, bad input) print ``error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.env import apply_defaults
from pipeline.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    lb = sub.add_parser("leaderboard", help="one CSV row per DVC experiment, best first")
    lb.add_argument("--out", type=Path, default=Path("leaderboard.csv"))
    lb.add_argument("--exp-json", type=Path, default=None,
                    help="read saved `dvc exp show --json` output instead of running dvc")

    pr = sub.add_parser("predict", help="predict a task for sentences or a CSV/TSV file")
    pr.add_argument("--model", type=Path, default=Path("models/multitask"))
    pr.add_argument("--task", required=True)
    pr.add_argument("sentences", nargs="*", help="one sentence, or two for a pair task")
    pr.add_argument("--input", type=Path, help="CSV/TSV with id,sentence or "
                    "id,sentence1,sentence2 columns")
    pr.add_argument("--output", type=Path, help="where --input's predictions go (CSV)")
    pr.add_argument("--batch-size", type=int, default=128)

    ab = sub.add_parser("ablate", help="run named ablations of params.yaml as DVC experiments")
    ab.add_argument("names", nargs="*", help="ablations of params.yaml's `ablations:`")
    ab.add_argument("--all", action="store_true", help="every declared ablation")
    ab.add_argument("--report", help="every ablation whose report title contains this text")
    ab.add_argument("--budget", help="a `budgets:` entry every run shares, e.g. cpu-small")
    ab.add_argument("--data-dir", type=Path, default=None,
                    help="CS224N files for a real-data budget (default: $MTB_CS224N_DIR, "
                         "else params.yaml's data.dir, the shipped data/cs224n)")
    ab.add_argument("--seeds", type=int, default=1,
                    help="run each ablation under N seeds (params' seed and the N-1 after it), "
                         "named NAME-BUDGET-s<seed>; 1 (default): one run named NAME-BUDGET")
    ab.add_argument("--list", action="store_true", help="list ablations and budgets, run none")
    ab.add_argument("--dry-run", action="store_true", help="print the dvc commands, run none")
    ab.add_argument("--leaderboard", type=Path, default=Path("leaderboard.csv"),
                    help="rewritten from `dvc exp show` after the runs")

    at = sub.add_parser("ablation-table", help="benchmarks/ablations.md with 95%% intervals, "
                        "from the DVC experiments' dev predictions (nothing retrained)")
    at.add_argument("--budget", required=True, help="the budget the runs ran under")
    at.add_argument("--out", type=Path, default=Path("benchmarks/ablations.md"))
    at.add_argument("--resamples", type=int, default=None,
                    help="bootstrap resamples (default: pipeline.intervals.RESAMPLES, 2000)")
    at.add_argument("--ran-with", default=None, help="the command that ran the ablations "
                    "(recorded in the table's header)")

    rs = sub.add_parser("results", help="the dev table and the test prediction files of the "
                        "last `dvc repro`")
    rs.add_argument("--metrics", type=Path, default=Path("results/eval/metrics.json"))
    rs.add_argument("--predictions", type=Path, default=Path("predictions"))

    rb = sub.add_parser("record-best", help="benchmarks/best.json from the leaderboard "
                        "preset's run applied to the workspace (scripts/run-leaderboard.sh)")
    rb.add_argument("--budget", default="cpu-long", help="the budget the preset ran under")
    rb.add_argument("--experiment", required=True, help="the DVC experiment that ran it")
    rb.add_argument("--command", dest="ran_command", required=True,
                    help="the exact command that ran it")
    rb.add_argument("--wall-seconds", type=float, default=None,
                    help="the whole command's wall time, install included")
    rb.add_argument("--out", type=Path, default=Path("benchmarks/best.json"))

    ws = sub.add_parser("wise-ft-sweep", help="dev scores of the workspace's trained model "
                        "mixed with its step-0 model at each alpha (WiSE-FT), nothing retrained")
    ws.add_argument("--alphas", type=float, nargs="+",
                    default=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0], help="mixing weights in [0, 1] "
                    "of the trained model (1: the trained model, 0: step 0)")
    ws.add_argument("--model", type=Path, default=Path("models/multitask"))
    ws.add_argument("--tokenized", type=Path, default=Path("data/tokenized"))
    ws.add_argument("--mlm", type=Path, default=Path("models/mlm"),
                    help="the MLM stage's output, when the run trained on its encoder")
    ws.add_argument("--out", type=Path, default=Path("results/wise_ft_sweep.json"))

    sb = sub.add_parser("submit", help="zip predictions/*-output.csv for the leaderboard")
    sb.add_argument("--predictions", type=Path, default=Path("predictions"))
    sb.add_argument("--out", type=Path, default=Path("submission.zip"))
    return p


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from pipeline.dvc_run import exp_show
    from pipeline.leaderboard import render_csv, rows_from_exp_show, write_leaderboard

    if args.exp_json is not None:
        if not args.exp_json.is_file():
            raise UserError(f"file not found: {args.exp_json}")
        shown = json.loads(args.exp_json.read_text(encoding="utf-8"))
    else:
        shown = exp_show(Path.cwd())
    rows = rows_from_exp_show(shown)
    write_leaderboard(args.out, rows)
    print(render_csv(rows), end="")
    print(f"{len(rows)} experiments -> {args.out}")


def cmd_predict(args: argparse.Namespace) -> None:
    from pipeline.predict import (
        check_task,
        describe,
        load_predictor,
        predict_file,
        predict_texts,
    )

    if args.input is None and not args.sentences:
        raise UserError("give sentences to predict, or --input FILE --output FILE")
    if args.input is not None and args.sentences:
        raise UserError("give either sentences or --input, not both")
    if args.input is not None and args.output is None:
        raise UserError("--input needs --output (where the predictions go)")
    predictor = load_predictor(args.model)
    check_task(predictor, args.task)
    pair = predictor.model.tasks[args.task].pair
    if args.input is not None:
        n = predict_file(predictor, args.task, args.input, args.output, args.batch_size)
        print(f"{n} predictions -> {args.output}")
        return
    want = 2 if pair else 1
    if len(args.sentences) != want:
        raise UserError(f"task '{args.task}' takes {want} sentence(s), got "
                        f"{len(args.sentences)}")
    p = predict_texts(predictor, args.task, [args.sentences[0]],
                      [args.sentences[1]] if pair else None)
    print(describe(args.task, p))


def _read_project_params() -> dict[str, object]:
    from pipeline.ablation_form import read_params

    return read_params(Path.cwd())


def cmd_ablate(args: argparse.Namespace) -> None:
    from pipeline.ablation_form import set_args
    from pipeline.ablations import (
        declared_ablations,
        declared_budgets,
        default_data_dir,
        expand,
        run_experiment,
        run_name,
        seed_values,
        select,
    )

    raw = _read_project_params()
    ablations, budgets = declared_ablations(raw), declared_budgets(raw)
    if args.list:
        for name, spec in budgets.items():
            print(f"budget {name}: {spec.description}")
        for name, spec in ablations.items():
            print(f"{name}: {spec.description} [{spec.report}]")
        return
    names = select(ablations, args.names, args.all, args.report)
    data_dir = args.data_dir or default_data_dir(Path.cwd())
    # Every run is expanded and validated before the first one starts; seed by seed, so an
    # interrupted sweep has every ablation at the first seeds.
    values = seed_values(raw, args.seeds)
    seeds: list[int | None] = list(values) if args.seeds > 1 else [None]
    plan = {run_name(n, args.budget, s): expand(raw, n, args.budget, data_dir, s)
            for s in seeds for n in names}
    if args.dry_run:
        for name, overrides in plan.items():
            print(" ".join(["dvc", "exp", "run", "--temp", "-n", name,
                            *set_args(overrides, raw)]))
        return
    for name, overrides in plan.items():
        print(f"== {name}", flush=True)
        run = run_experiment(Path.cwd(), name, overrides, raw)
        what = ("served from DVC's cache (no stage ran)" if run.from_cache
                else f"ran {', '.join(run.stages_run)}")
        print(f"== {name}: {what} in {run.seconds:.0f}s", flush=True)
    cmd_leaderboard(argparse.Namespace(out=args.leaderboard, exp_json=None))


def cmd_ablation_table(args: argparse.Namespace) -> None:
    from pipeline.ablation_table import write_ablation_table
    from pipeline.intervals import RESAMPLES

    out: Path = args.out
    data = out.with_name(f"{out.stem}-intervals.csv")
    plot = out.with_name(f"{out.stem}-forest.png")
    table = write_ablation_table(Path.cwd(), _read_project_params(), args.budget, out,
                                 args.ran_with, args.resamples or RESAMPLES, plot, data)
    print(f"{table.count} ablations -> {out} (intervals: {data}, forest plot: {plot})")


def cmd_record_best(args: argparse.Namespace) -> None:
    from pipeline.ablations import declared_budgets, named_budget_overrides
    from pipeline.best_run import record_best
    from pipeline.run_summary import dev_table

    raw = _read_project_params()
    budgets = declared_budgets(raw)
    overrides = named_budget_overrides(raw, args.budget, None)
    record = record_best(Path.cwd(), args.out, budget=args.budget, experiment=args.experiment,
                         command=args.ran_command, overrides=overrides,
                         description=budgets[args.budget].description,
                         wall_seconds=args.wall_seconds)
    print("\n".join(dev_table(record["dev_metrics"] | {"overall": record["dev"]["overall"]})))
    print(f"training: {record['steps']} steps in {record['train_step_seconds']:.0f} s "
          f"({record['train_fit_seconds']:.0f} s with per-epoch dev scoring) -> {args.out}")


def cmd_wise_ft_sweep(args: argparse.Namespace) -> None:
    from pipeline.config import load_params
    from pipeline.io import write_json
    from pipeline.wise_ft_sweep import sweep, sweep_table

    result = sweep(load_params(), args.tokenized, args.mlm, args.model, args.alphas)
    write_json(args.out, result)
    print("\n".join(sweep_table(result)))
    print(f"-> {args.out}")


def cmd_submit(args: argparse.Namespace) -> None:
    from pipeline.submit import pack_submission

    names = pack_submission(args.predictions, args.out)
    print(f"{len(names)} files -> {args.out}")


def cmd_results(args: argparse.Namespace) -> None:
    from pipeline.run_summary import summary

    print(summary(args.metrics, args.predictions))


COMMANDS = {"results": cmd_results, "leaderboard": cmd_leaderboard, "predict": cmd_predict,
            "submit": cmd_submit, "ablate": cmd_ablate, "ablation-table": cmd_ablation_table,
            "record-best": cmd_record_best, "wise-ft-sweep": cmd_wise_ft_sweep}


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a ``UserError`` prints one ``error:`` line and returns 2."""
    apply_defaults()
    args = _parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
