"""The declared ablations and budgets of params.yaml, run as named, cached DVC experiments.

An ablation is a name for a set of params changes (``ablations:``); a budget is a name for
the changes every run under it shares (``budgets:``: data, encoder, steps). Running ablation
``A`` under budget ``B`` is ``dvc exp run --temp -n A-B -S <B's changes> -S <A's changes>``: the
same name and params always give the same experiment, so a second run is served from DVC's
run cache instead of training again, and ``dvc exp show`` / ``leaderboard.csv`` hold one row
per ablation and budget.

Several seeds (``--seeds N``) measure how much of a difference is seed noise: each ablation
then runs once per seed ``s`` of :func:`seed_values` (``-S seed=s``), named ``A-B-s<seed>``.
One seed keeps the plain ``A-B`` name and no seed change, so experiments run before seeds
existed stay valid and are still served from the run cache.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.ablation_form import (
    AblationError,
    apply_overrides,
    set_args,
    yaml_scalar,
)
from pipeline.config import AblationSpec, BudgetSpec, parse_params
from pipeline.dvc_run import DvcError, exp_run_args, experiment_list, free_name_args, run_dvc
from pipeline.errors import UserError

DATA_DIR_ENV = "MTB_CS224N_DIR"
STAGE_RUN = re.compile(r"Running stage '([^']+)'")


def declared_ablations(raw: dict[str, Any]) -> dict[str, AblationSpec]:
    """The typed ``ablations:`` section of a params dict."""
    return dict(parse_params(raw, "params.yaml").ablations)


def declared_budgets(raw: dict[str, Any]) -> dict[str, BudgetSpec]:
    """The typed ``budgets:`` section of a params dict."""
    return dict(parse_params(raw, "params.yaml").budgets)


def default_data_dir(project: Path) -> Path | None:
    """Where the CS224N files are when no --data-dir is given: $MTB_CS224N_DIR, else None
    (the params' own ``data.dir``: the copy shipped in the project's ``data/cs224n``)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).resolve() if env else None


def budget_overrides(budget: BudgetSpec, name: str, data_dir: Path | None) -> dict[str, str]:
    """The budget's changes as ``-S`` values; a real-data budget run with a ``data_dir`` gets
    it as an absolute data.dir (without one, params.yaml's data.dir stands)."""
    out = {key: yaml_scalar(value) for key, value in budget.changes.items()}
    if (budget.changes.get("data.source") == "cs224n" and "data.dir" not in budget.changes
            and data_dir is not None):
        if not data_dir.is_dir():
            raise AblationError(f"budget '{name}': data dir not found: {data_dir}")
        out["data.dir"] = str(data_dir.resolve())
    return out


def named_budget_overrides(raw: dict[str, Any], budget: str | None,
                           data_dir: Path | None) -> dict[str, str]:
    """``budget``'s ``-S`` values from params.yaml's ``budgets:`` (None: no budget, none)."""
    if budget is None:
        return {}
    budgets = declared_budgets(raw)
    if budget not in budgets:
        raise AblationError(f"unknown budget '{budget}'; declared: "
                            f"{', '.join(sorted(budgets))}")
    return budget_overrides(budgets[budget], budget, data_dir)


def seed_values(raw: dict[str, Any], seeds: int) -> list[int]:
    """The ``seeds`` seeds a sweep runs: params.yaml's ``seed`` and the ones after it.

    Consecutive from the project's own seed, so ``--seeds 3`` after ``--seeds 2`` reuses the
    first two runs from the cache and adds one.
    """
    if seeds < 1:
        raise AblationError(f"--seeds must be at least 1, got {seeds}")
    first = int(raw.get("seed", 0) or 0)
    return [first + i for i in range(seeds)]


def expand(raw: dict[str, Any], ablation: str, budget: str | None,
           data_dir: Path | None = None, seed: int | None = None) -> dict[str, str]:
    """The validated ``-S`` overrides of one ablation under one budget (None: no budget).

    Budget first, then the ablation's own changes (which win on a shared key), then ``seed``
    when given (None: the params' own seed, no override). Unknown names list the declared
    ones; a bad key or value fails here, before any DVC work.
    """
    ablations = declared_ablations(raw)
    if ablation not in ablations:
        raise AblationError(f"unknown ablation '{ablation}'; declared: "
                            f"{', '.join(sorted(ablations))}")
    overrides = named_budget_overrides(raw, budget, data_dir)
    overrides.update({k: yaml_scalar(v) for k, v in ablations[ablation].changes.items()})
    if seed is not None:
        overrides["seed"] = str(seed)
    try:
        apply_overrides(raw, overrides)
    except AblationError as err:
        where = f"ablation '{ablation}'" + (f" under budget '{budget}'" if budget else "")
        raise AblationError(f"{where}: {err}") from None
    return overrides


def select(ablations: dict[str, AblationSpec], names: list[str], everything: bool = False,
           report: str | None = None) -> list[str]:
    """The ablations to run: the named ones, all, or those of a report (title substring)."""
    unknown = sorted(set(names) - set(ablations))
    if unknown:
        raise AblationError(f"unknown ablation(s) {', '.join(unknown)}; declared: "
                            f"{', '.join(sorted(ablations))}")
    chosen = list(names)
    if everything:
        chosen += list(ablations)
    if report:
        matched = [n for n, spec in ablations.items() if report.lower() in spec.report.lower()]
        if not matched:
            titles = sorted({spec.report for spec in ablations.values()})
            raise AblationError(f"no ablation comes from a report matching '{report}'; "
                                f"reports: {'; '.join(titles)}")
        chosen += matched
    if not chosen:
        raise AblationError("name ablations to run, or pass --all or --report")
    return list(dict.fromkeys(chosen))


def sweep_plan(raw: dict[str, Any], names: list[str] | None,
               ablations: dict[str, dict[str, Any]] | None, budget: str | None,
               data_dir: Path | None, seeds: int = 1) -> dict[str, dict[str, str]]:
    """Experiment name -> ``-S`` overrides for the Prefect ``sweep`` flow.

    ``ablations`` (name -> {dotted key: value}) when given, else params.yaml's declared ones;
    restricted to ``names``; each merged over ``budget``'s changes and named
    ``<ablation>-<budget>`` (``-s<seed>`` added per seed when ``seeds`` > 1, as ``ablate``).
    Values are validated by the caller against the project.
    """
    if ablations is not None:
        declared = {str(n): {str(k): yaml_scalar(v) for k, v in changes.items()}
                    for n, changes in ablations.items()}
    else:
        declared = {n: {k: yaml_scalar(v) for k, v in spec.changes.items()}
                    for n, spec in declared_ablations(raw).items()}
    if names:
        missing = sorted(set(names) - set(declared))
        if missing:
            raise AblationError(f"unknown ablations {missing}; declared: {sorted(declared)}")
        declared = {n: declared[n] for n in names}
    if not declared:
        raise AblationError("no ablations to run (params.yaml has no 'ablations:' section)")
    shared = named_budget_overrides(raw, budget, data_dir)
    plan: dict[str, dict[str, str]] = {}
    values = seed_values(raw, seeds)
    for seed in values if seeds > 1 else [None]:
        for n, changes in declared.items():
            extra = {} if seed is None else {"seed": str(seed)}
            plan[run_name(n, budget, seed)] = {**shared, **changes, **extra}
    return plan


def run_name(ablation: str, budget: str | None, seed: int | None = None) -> str:
    """``anneal-cpu-small`` (or ``anneal-cpu-small-s14`` for one seed of several): the DVC
    experiment name of an ablation under a budget."""
    name = f"{ablation}-{budget}" if budget else ablation
    return name if seed is None else f"{name}-s{seed}"


SEED_SUFFIX = re.compile(r"-s(\d+)$")


def parse_run_name(name: str, ablations: set[str],
                   budget: str) -> tuple[str, int | None] | None:
    """(ablation, seed) of ``<ablation>-<budget>[-s<seed>]`` (seed None: the plain name, run
    at the params' own seed); None when the name is not one of these."""
    seed: int | None = None
    match = SEED_SUFFIX.search(name)
    if match and split_experiment_name(name[: match.start()], ablations, budget):
        name, seed = name[: match.start()], int(match.group(1))
    ablation = split_experiment_name(name, ablations, budget)
    return None if ablation is None else (ablation, seed)


def split_experiment_name(name: str, ablations: set[str], budget: str) -> str | None:
    """The ablation an experiment name ``<ablation>-<budget>`` belongs to (None: not one)."""
    suffix = f"-{budget}"
    if name.endswith(suffix) and name[: -len(suffix)] in ablations:
        return name[: -len(suffix)]
    return None


@dataclass
class ExperimentRun:
    """What one ``dvc exp run`` did: the stages it executed (none: all served from cache)."""

    name: str
    overrides: dict[str, str]
    seconds: float
    stages_run: list[str] = field(default_factory=list)

    @property
    def from_cache(self) -> bool:
        return not self.stages_run


def run_experiment(project: Path, name: str, overrides: dict[str, str], params: dict[str, Any],
                   stream: bool = True) -> ExperimentRun:
    """``dvc exp run --temp -n NAME -S ...`` in ``project`` (``params``: its params.yaml, to add
    keys it leaves out with ``++``), printing DVC's output as it comes when ``stream``.

    An earlier experiment of the same name (a rerun of the same ablation) is replaced, the
    rule of :mod:`pipeline.dvc_run`; the run cache makes that rerun a no-op.
    """
    free = free_name_args(name, experiment_list(project))
    if free:
        run_dvc(project, free)
    start = time.perf_counter()
    try:
        output = run_dvc(project, exp_run_args(name, set_args(overrides, params)),
                         echo=(lambda line: print(line, flush=True)) if stream else None)
    except DvcError as err:
        raise UserError(f"experiment '{name}' failed (dvc exit {err.code}):\n"
                        + "\n".join(err.output[-40:]).rstrip()) from None
    return ExperimentRun(name, overrides, time.perf_counter() - start, STAGE_RUN.findall(output))
