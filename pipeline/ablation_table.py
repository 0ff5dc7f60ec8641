"""``benchmarks/ablations.md``: every ablation run under one budget, with intervals, beside the
reports' claims.

Read from DVC, never retrained: the experiments named ``<ablation>-<budget>[-s<seed>]``
(``dvc exp show``) and each one's dev predictions at its commit (``pipeline.exp_runs``). Each
ablation is compared with the ``baseline`` of the same budget and seed, on the same dev rows,
by the seed-and-row bootstrap of ``pipeline.intervals``. A claim is called ``agree`` or
``disagree`` only when the 95% interval of the difference excludes zero; otherwise the table
says ``no detectable effect (±x)``, x the interval's half width: what this budget and these
seeds can and cannot tell apart. The baseline's own spread over seeds is listed too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.ablations import declared_ablations, parse_run_name
from pipeline.config import parse_params
from pipeline.errors import UserError
from pipeline.intervals import RESAMPLES, Comparison, Interval, RunDev, compare, seed_spread
from pipeline.io import write_text

BASELINE = "baseline"
FLOOR = "zero-shot"  # the untrained encoder with zero-shot heads: what training must beat
OVERALL = "overall"
INTERVAL_COLUMNS = ["ablation", "report", "metric", "seeds", "mean", "baseline", "delta",
                    "low", "high", "half_width", "verdict"]


@dataclass
class SeedRun:
    """One experiment of the table: its dev rows and its training (+ MLM) wall time."""

    name: str
    dev: RunDev
    seconds: float | None = None


Runs = Mapping[str, Mapping[int, SeedRun]]  # ablation -> seed -> run


@dataclass
class Table:
    """The rendered markdown, how many ablations (baseline excluded) it covers, and one row
    per (ablation, metric) interval for the DVC plot and the forest plot."""

    markdown: str
    count: int
    intervals: list[dict[str, Any]] = field(default_factory=list)


def claim_verdict(want: str, interval: Interval) -> str:
    """``agree`` / ``disagree`` with a claimed direction (up, down, flat) only when the interval
    excludes zero; otherwise ``no detectable effect (±x)``."""
    if not interval.excludes_zero:
        return f"no detectable effect (±{interval.half_width:.3f})"
    got = "up" if interval.low > 0 else "down"
    return "agree" if got == want else "disagree"


def verdict(expect: Mapping[str, str], comparison: Comparison) -> tuple[str, str]:
    """(the verdict cell, its tally bucket) of an ablation against its report's claims.

    The cell names each claimed metric's verdict; the bucket is ``agree`` / ``disagree``
    when every measured claim is, ``no detectable effect`` when none is detectable, and
    ``partly`` otherwise.
    """
    if not expect:
        return "no direction claimed", "no direction claimed"
    parts = {key: claim_verdict(want, comparison.intervals[key])
             for key, want in expect.items() if key in comparison.intervals}
    if not parts:
        return "not measured", "not measured"
    kinds = {v if v in ("agree", "disagree") else "none" for v in parts.values()}
    bucket = ("no detectable effect" if kinds == {"none"} else
              kinds.pop() if len(kinds) == 1 else "partly")
    if len(parts) == 1:
        return next(iter(parts.values())), bucket
    return "; ".join(f"{k}: {v}" for k, v in parts.items()), bucket


def collect(runs: list[Any], raw: dict[str, Any], budget: str) -> dict[str, dict[int, Any]]:
    """The experiments (``pipeline.exp_runs.ExpRun``) of ``budget``'s ablations, by ablation
    and seed (the seed from each run's params). A seeded name wins over the plain one of the
    same seed (same params: the same run)."""
    names = set(declared_ablations(raw))
    out: dict[str, dict[int, Any]] = {}
    for run in runs:
        parsed = parse_run_name(run.name, names, budget)
        if parsed is None:
            continue
        ablation, named_seed = parsed
        seeds = out.setdefault(ablation, {})
        if run.seed not in seeds or named_seed is not None:
            seeds[run.seed] = run
    return out


def _f(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ci(iv: Interval | None, digits: int = 4) -> str:
    if iv is None:
        return ""
    return f"{iv.delta:+.{digits}f} [{iv.low:+.{digits}f}, {iv.high:+.{digits}f}]"


def table_metrics(raw: dict[str, Any]) -> dict[str, str]:
    """The table's dev-score columns, by the name an ablation's ``expect`` uses: every task
    counted in ``overall`` (``in_overall``), titled by its primary metric (accuracy for a
    classification task, Pearson r for a regression one), then ``overall``. A task a user adds
    gets its column (and its floor check) like the built-in ones."""
    tasks = parse_params(raw).tasks
    columns = {t: f"{t} {'r' if c.type == 'regression' else 'acc'}"
               for t, c in tasks.items() if c.in_overall}
    return {**columns, OVERALL: OVERALL}


def task_columns(metrics: Mapping[str, str]) -> list[str]:
    return [m for m in metrics if m != OVERALL]


def below_floor(means: Mapping[str, float], floor: Mapping[str, float] | None,
                tasks: Sequence[str]) -> list[str]:
    """The ``tasks`` on which ``means`` (over seeds) are below the floor's."""
    if floor is None:
        return []
    return [t for t in tasks if t in means and t in floor and means[t] < floor[t]]


def _seconds(runs: Mapping[int, SeedRun]) -> str:
    values = [r.seconds for r in runs.values() if r.seconds]
    return f"{sum(values) / len(values):.0f}" if values else ""


def _baseline_overall(runs: Mapping[int, SeedRun], overall_tasks: list[str]) -> float | None:
    spread = seed_spread({s: r.dev for s, r in runs.items()}, overall_tasks).get(OVERALL)
    return spread.mean if spread is not None else None


def _spread_line(runs: Mapping[int, SeedRun], overall_tasks: list[str],
                 metrics: Mapping[str, str]) -> str:
    spread = seed_spread({s: r.dev for s, r in runs.items()}, overall_tasks)
    seeds = ", ".join(str(s) for s in sorted(runs))
    parts = [f"{metrics[m]} {_f(sp.mean, 4)} ± {_f(sp.sd, 4)} (range {_f(sp.low, 4)}–"
             f"{_f(sp.high, 4)})" for m in metrics if (sp := spread.get(m)) is not None]
    return (f"Baseline over {len(runs)} seed(s) ({seeds}), mean ± sd across seeds: "
            + "; ".join(parts) + ".")


def _compare_all(runs: Runs, specs: Mapping[str, Any], overall_tasks: list[str],
                 resamples: int) -> dict[str, Comparison]:
    """Each declared ablation sharing a seed with the baseline, compared with it."""
    base = runs[BASELINE]
    return {name: compare({s: r.dev for s, r in base.items()},
                          {s: r.dev for s, r in seeded.items()}, overall_tasks, resamples)
            for name, seeded in runs.items() if name != BASELINE and name in specs
            and set(seeded) & set(base)}


def _preamble(raw: dict[str, Any], budget: str, command: str | None,
              resamples: int, metrics: Mapping[str, str]) -> list[str]:
    """The title and what the table's columns mean."""
    budget_spec = raw.get("budgets", {}).get(budget, {})
    columns = [metrics[t] for t in task_columns(metrics)]
    as_terms = [f"({t} + 1) / 2" if metrics[t].endswith(" r") else t
                for t in task_columns(metrics)]
    return [
        f"# Ablations under the `{budget}` budget",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python -m pipeline ablation-table --budget {budget}` from the DVC experiments' "
        "dev predictions (`dvc exp show`; nothing retrained).",
        f"Runs: `{command}`." if command else "",
        f"Budget: {budget_spec.get('description', '').strip()}.",
        f"Dev scores: {', '.join(columns)} (acc: accuracy, r: Pearson r); overall = mean of"
        f" {', '.join(as_terms)}; each the mean over the ablation's seeds. Δ is ablation −"
        " `baseline`"
        " (same budget, same seed, same dev rows), averaged over seeds, with its 95% interval:"
        f" a paired bootstrap of {resamples} resamples (numpy seed fixed) that draws seeds with"
        " replacement, then dev rows (the same rows for both runs), and recomputes each metric.",
        "`verdict` compares with the direction the report claimed (`expect` in params.yaml):"
        " agree / disagree only where the interval excludes zero, else `no detectable effect"
        " (±x)` with x the interval's half width. seconds = training (+ MLM) wall time, mean"
        " over seeds.",
        "",
    ]


def _floor_line(floor: Comparison | None, budget: str, tasks: Sequence[str]) -> str:
    """The zero-shot floor's scores on ``tasks`` and whether the baseline clears them."""
    if floor is None:
        return (f"Zero-shot floor: not run (`python -m pipeline ablate {FLOOR} "
                f"--budget {budget}`).")
    below = below_floor(floor.baseline, floor.ablation, tasks)
    return (f"Zero-shot floor (`{FLOOR}`: no training step): "
            + ", ".join(f"{t} {_f(floor.ablation.get(t))}" for t in tasks)
            + ". Baseline " + ("at or above it on every task." if not below
                               else f"BELOW it on {', '.join(below)}."))


def _interval_rows(name: str, report: str, expect: Mapping[str, str],
                   cmp: Comparison) -> list[dict[str, Any]]:
    """One row per metric of an ablation's comparison (the CSV and the forest plot)."""
    return [{"ablation": name, "report": report, "metric": metric, "seeds": len(cmp.seeds),
             "mean": cmp.ablation[metric], "baseline": cmp.baseline[metric],
             "delta": iv.delta, "low": iv.low, "high": iv.high, "half_width": iv.half_width,
             "verdict": claim_verdict(want, iv) if (want := expect.get(metric)) else ""}
            for metric, iv in cmp.intervals.items()]


def _report_sections(runs: Runs, specs: Mapping[str, Any], by_report: dict[str, list[str]],
                     comparisons: dict[str, Comparison], metrics: Mapping[str, str]
                     ) -> tuple[list[str], dict[str, list[str]], list[dict[str, Any]]]:
    """One table per report: (its lines, the ablations by verdict bucket, interval rows)."""
    tasks = task_columns(metrics)
    floor = comparisons.get(FLOOR)
    floor_means = floor.ablation if floor is not None else None
    lines: list[str] = []
    tally: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    for report, names in by_report.items():
        lines += ["", f"## {report}", "",
                  "| ablation | what it tests | seeds | "
                  + "".join(f"{metrics[t]} | " for t in tasks)
                  + "overall | Δ overall [95% CI] | below zero-shot | seconds | report's claim"
                  " | verdict |",
                  "|---|---|---|" + "---|" * len(tasks) + "---|---|---|---|---|---|"]
        for name in names:
            spec, cmp = specs[name], comparisons[name]
            cell, bucket = verdict(spec.expect, cmp)
            under = "(floor)" if name == FLOOR else ", ".join(
                below_floor(cmp.ablation, floor_means, tasks))
            lines.append(
                f"| {name} | {spec.description} | {len(cmp.seeds)} | "
                + " | ".join(_f(cmp.ablation.get(t)) for t in tasks)
                + f" | {_f(cmp.ablation.get(OVERALL), 4)} | {_ci(cmp.intervals.get(OVERALL))}"
                f" | {under} | {_seconds(runs[name])} | {spec.claim or ''} | {cell} |")
            tally.setdefault(bucket, []).append(name)
            rows += _interval_rows(name, report, spec.expect, cmp)
    return lines, tally, rows


def _per_task_section(by_report: dict[str, list[str]], comparisons: dict[str, Comparison],
                      metrics: Mapping[str, str]) -> list[str]:
    """Δ [95% CI] of every metric, one row per ablation."""
    lines = ["", "## Intervals per task", "",
             "Δ [95% CI] of every dev metric (the forest plot beside this file draws them).",
             "", "| ablation | seeds | " + " | ".join(f"Δ {metrics[m]}" for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for names in by_report.values():
        for name in names:
            cmp = comparisons[name]
            lines.append(f"| {name} | {len(cmp.seeds)} | "
                         + " | ".join(_ci(cmp.intervals.get(m), 3) for m in metrics) + " |")
    return lines


def _agreement_section(tally: dict[str, list[str]], comparisons: dict[str, Comparison],
                       budget: str, baseline_overall: float | None) -> list[str]:
    """How many ablations agree with their reports, and the best mean dev overall (the
    baseline's over all its seeds, as in the spread line; each ablation's over its own)."""
    lines = ["", "## Agreement with the reports", ""]
    lines += [f"- {kind}: {len(names)} ({', '.join(names)})"
              for kind, names in sorted(tally.items())]
    means = {BASELINE: baseline_overall}
    means.update({n: c.ablation.get(OVERALL) for n, c in comparisons.items()})
    scored = {n: v for n, v in means.items() if v is not None}
    if scored:
        best = max(scored, key=lambda n: scored[n])
        lines += ["", f"Highest mean dev overall under `{budget}`: `{best}` "
                      f"({_f(scored[best], 4)})."]
    return lines


def _missing_section(specs: Mapping[str, Any], comparisons: Mapping[str, Comparison],
                     budget: str) -> list[str]:
    """The declared ablations with no experiment under this budget, and how to run them."""
    missing = [n for n in specs if n != BASELINE and n not in comparisons]
    if not missing:
        return []
    return ["", f"## Not run under `{budget}` ({len(missing)} of {len(specs) - 1})", "",
            ", ".join(f"`{n}`" for n in missing) + ".", "",
            f"Run them with `python -m pipeline ablate {' '.join(missing)} --budget {budget}"
            " --seeds 3`, then render this table again (runs already made are served from"
            " DVC's cache)."]


def render(runs: Runs, raw: dict[str, Any], budget: str, command: str | None = None,
           resamples: int = RESAMPLES) -> Table:
    """The markdown table, with every ablation's interval rows."""
    specs = declared_ablations(raw)
    if BASELINE not in runs or not runs[BASELINE]:
        raise UserError(f"no '{BASELINE}-{budget}' experiment: run "
                        f"`python -m pipeline ablate {BASELINE} --budget {budget}` first")
    metrics = table_metrics(raw)
    overall_tasks = task_columns(metrics)
    comparisons = _compare_all(runs, specs, overall_tasks, resamples)
    by_report: dict[str, list[str]] = {}
    for name, spec in specs.items():
        if name in comparisons:
            by_report.setdefault(spec.report, []).append(name)
    sections, tally, rows = _report_sections(runs, specs, by_report, comparisons, metrics)
    lines = [*_preamble(raw, budget, command, resamples, metrics),
             _spread_line(runs[BASELINE], overall_tasks, metrics),
             _floor_line(comparisons.get(FLOOR), budget, overall_tasks),
             *sections,
             *_per_task_section(by_report, comparisons, metrics),
             *_agreement_section(tally, comparisons, budget,
                                 _baseline_overall(runs[BASELINE], overall_tasks)),
             *_missing_section(specs, comparisons, budget)]
    return Table("\n".join(lines) + "\n", len(comparisons), rows)


def intervals_csv(rows: list[dict[str, Any]]) -> str:
    """The interval rows as CSV: the data file of the DVC plot (``dvc plots show``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=INTERVAL_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def load_runs(project: Path, raw: dict[str, Any], budget: str) -> dict[str, dict[int, SeedRun]]:
    """The budget's experiments from DVC, with each one's dev rows read at its commit."""
    from pipeline.dvc_run import exp_show
    from pipeline.exp_runs import experiments, read_dev

    grouped = collect(experiments(exp_show(project)), raw, budget)
    out: dict[str, dict[int, SeedRun]] = {}
    for ablation, seeded in grouped.items():
        for seed, run in seeded.items():
            secs = [v for c in ("train_seconds", "mlm_seconds")
                    if (v := run.metrics.get(c)) is not None]
            out.setdefault(ablation, {})[seed] = SeedRun(run.name, read_dev(project, run),
                                                         sum(secs) if secs else None)
    return out


def write_ablation_table(project: Path, raw: dict[str, Any], budget: str, out: Path,
                         command: str | None = None, resamples: int = RESAMPLES,
                         plot: Path | None = None, data: Path | None = None) -> Table:
    """Write the table, its interval data (CSV, for ``dvc plots show``) and the forest plot
    (PNG); returns the rendered table."""
    table = render(load_runs(project, raw, budget), raw, budget, command, resamples)
    write_text(out, table.markdown)
    if data is not None:
        write_text(data, intervals_csv(table.intervals))
    if plot is not None:
        from pipeline.forest_plot import forest_plot

        forest_plot(table.intervals, plot, f"Ablations under `{budget}`: Δ vs baseline, 95% CI")
    return table
