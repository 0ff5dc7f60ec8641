"""``benchmarks/ablations.md``: every ablation run under one budget, beside the reports' claims.

Generated from ``leaderboard.csv`` (one row per DVC experiment, named ``<ablation>-<budget>``)
and the ``ablations:`` section of params.yaml (report, description, claim, expected direction).
Each ablation's dev scores are compared with the ``baseline`` run of the same budget; a change
smaller than the noise margin counts as flat. One seed and a short budget make that margin
the honest limit of what the table can say.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from pipeline.ablations import declared_ablations, split_experiment_name
from pipeline.errors import UserError
from pipeline.io import write_text

BASELINE = "baseline"
FLOOR = "zero-shot"  # the untrained encoder with zero-shot heads: what training must beat
# Dev score column of leaderboard.csv for each name an ablation's `expect` may use.
SCORES = {"overall": "overall", "sst": "sst.accuracy", "para": "para.accuracy",
          "sts": "sts.pearson"}
# |change| below this is "flat": about one standard error of the capped dev sets (sst 1101
# rows, para 2000, sts 863) for a single seed.
NOISE = 0.015


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise UserError(f"leaderboard not found: {path} (run `python -m pipeline leaderboard`)")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "name" not in rows[0]:
        raise UserError(f"{path}: no 'name' column; is it a leaderboard.csv?")
    return rows


def direction(delta: float, noise: float = NOISE) -> str:
    return "flat" if abs(delta) < noise else ("up" if delta > 0 else "down")


def _score(row: dict[str, str], column: str) -> float | None:
    value = row.get(column, "")
    try:
        return float(value)
    except ValueError:
        return None


def verdict(expect: dict[str, str], row: dict[str, str], base: dict[str, str]) -> str:
    """``agree`` / ``disagree`` / ``partly`` against the report's expected directions."""
    if not expect:
        return "no direction claimed"
    hits = []
    for key, want in expect.items():
        column = SCORES.get(key)
        ours, ref = (_score(row, column), _score(base, column)) if column else (None, None)
        if ours is None or ref is None:
            continue
        hits.append(direction(ours - ref) == want)
    if not hits:
        return "not measured"
    return "agree" if all(hits) else ("disagree" if not any(hits) else "partly")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def below_floor(row: dict[str, str], floor: dict[str, str] | None) -> list[str]:
    """The tasks (sst, para, sts) on which ``row`` scores below the zero-shot floor."""
    if floor is None:
        return []
    out = []
    for task in ("sst", "para", "sts"):
        ours, ref = _score(row, SCORES[task]), _score(floor, SCORES[task])
        if ours is not None and ref is not None and ours < ref:
            out.append(task)
    return out


def _seconds(row: dict[str, str]) -> str:
    total = sum(v for c in ("train_seconds", "mlm_seconds") if (v := _score(row, c)) is not None)
    return f"{total:.0f}" if total else ""


def render(rows: list[dict[str, str]], raw: dict[str, Any], budget: str,
           command: str | None = None) -> tuple[str, int]:
    """The markdown table and how many ablations (baseline excluded) it covers."""
    specs = declared_ablations(raw)
    ran = {}
    for row in rows:
        ablation = split_experiment_name(row["name"], set(specs), budget)
        if ablation is not None:
            ran[ablation] = row
    if BASELINE not in ran:
        raise UserError(f"no '{BASELINE}-{budget}' row in the leaderboard: run "
                        f"`python -m pipeline ablate {BASELINE} --budget {budget}` first")
    base = ran[BASELINE]
    budget_spec = raw.get("budgets", {}).get(budget, {})
    lines = [
        f"# Ablations under the `{budget}` budget",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python -m pipeline ablation-table --budget {budget}` from `leaderboard.csv`.",
        f"Runs: `{command}`." if command else "",
        f"Budget: {budget_spec.get('description', '').strip()}.",
        "Dev scores: sst and para accuracy, sts Pearson r; overall = mean of sst, para and"
        " (r + 1) / 2. Δ is against the `baseline` row of the same budget; a change under"
        f" {NOISE} counts as flat (one seed: about one standard error of these dev sets).",
        "`verdict` compares our direction with the one the report claimed (`expect` in"
        " params.yaml): agree / partly / disagree. seconds = training (+ MLM) wall time.",
        "",
    ]
    b_overall = _score(base, "overall")
    lines.append(f"Baseline: overall {_fmt(b_overall, 4)}, sst {_fmt(_score(base, SCORES['sst']))}"
                 f", para {_fmt(_score(base, SCORES['para']))}, sts "
                 f"{_fmt(_score(base, SCORES['sts']))}, {_seconds(base)} s.")
    floor = ran.get(FLOOR)
    if floor is not None:
        below = below_floor(base, floor)
        lines.append(
            f"Zero-shot floor (`{FLOOR}`: no training step): sst "
            f"{_fmt(_score(floor, SCORES['sst']))}, para {_fmt(_score(floor, SCORES['para']))}, "
            f"sts {_fmt(_score(floor, SCORES['sts']))}. Baseline "
            + ("at or above it on every task." if not below
               else f"BELOW it on {', '.join(below)}."))
    else:
        lines.append(f"Zero-shot floor: not run (`python -m pipeline ablate {FLOOR} "
                     f"--budget {budget}`).")
    by_report: dict[str, list[str]] = {}
    for name, spec in specs.items():
        if name == BASELINE or name not in ran:
            continue
        by_report.setdefault(spec.report, []).append(name)
    count = 0
    tally: dict[str, list[str]] = {}
    for report, names in by_report.items():
        lines += ["", f"## {report}", "",
                  "| ablation | what it tests | sst acc | para acc | sts r | overall | Δ overall"
                  " | below zero-shot | seconds | report's claim | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name in names:
            spec, row = specs[name], ran[name]
            overall = _score(row, "overall")
            delta = None if overall is None or b_overall is None else overall - b_overall
            lines.append(
                f"| {name} | {spec.description} | {_fmt(_score(row, SCORES['sst']))} | "
                f"{_fmt(_score(row, SCORES['para']))} | {_fmt(_score(row, SCORES['sts']))} | "
                f"{_fmt(overall, 4)} | {'' if delta is None else f'{delta:+.4f}'} | "
                f"{', '.join(below_floor(row, floor)) if name != FLOOR else '(floor)'} | "
                f"{_seconds(row)} | {spec.claim or ''} | {verdict(spec.expect, row, base)} |")
            tally.setdefault(verdict(spec.expect, row, base), []).append(name)
            count += 1
    lines += ["", "## Agreement with the reports", ""]
    lines += [f"- {kind}: {len(names)} ({', '.join(names)})"
              for kind, names in sorted(tally.items())]
    best = max(ran, key=lambda n: _score(ran[n], "overall") or -1.0)
    lines += ["", f"Highest dev overall under `{budget}`: `{best}` "
                  f"({_fmt(_score(ran[best], 'overall'), 4)})."]
    return "\n".join(lines) + "\n", count


def write_ablation_table(leaderboard: Path, raw: dict[str, Any], budget: str, out: Path,
                         command: str | None = None) -> int:
    """Write the table; returns how many ablations it covers."""
    text, count = render(read_leaderboard(leaderboard), raw, budget, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, text)
    return count
