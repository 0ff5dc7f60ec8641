"""Register the flows as deployments of one project folder and serve them from this process.

`python -m pipeline.flows.serve --project .` creates (or updates) three deployments on the
Prefect server named by PREFECT_API_URL, with example schedules and default parameters, then
polls for their runs (scheduled or triggered from the UI) and executes them here. Stopping the
process (SIGINT/SIGTERM) pauses the schedules so no runs pile up while nothing serves them.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment

from pipeline.flows.flows import TRAINING_LIMIT, experiment, repro, sweep

DEFAULT_REPRO_CRON = "0 2 * * *"    # nightly: rerun whatever changed on the checked-out commit
DEFAULT_SWEEP_CRON = "0 3 * * 6"    # Saturdays: the ablations of params.yaml
# The weekly sweep measures the declared ablations on the real data, 3 seeds each (the
# intervals of benchmarks/ablations.md need several), not on the synthetic test defaults.
WEEKLY_BUDGET = "cpu-small"
WEEKLY_SEEDS = 3
# `dvc repro` runs in the project's workspace, where DVC locks every output a stage writes: a
# second repro that starts while one runs fails at once ("... is busy"). So repro runs of the
# deployment queue behind each other (a scheduled run that comes due while the last one still
# runs, or one started from the UI meanwhile, waits in AwaitingConcurrencySlot and then runs,
# usually as a no-op). Experiments and sweeps train in DVC's temp copies and queue on the
# `dvc-training` limit instead.
ONE_REPRO_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def build_deployments(project: Path, repro_cron: str | None = DEFAULT_REPRO_CRON,
                      sweep_cron: str | None = DEFAULT_SWEEP_CRON,
                      repro_every: float | None = None) -> list[RunnerDeployment]:
    """The three deployments; `repro_every` (seconds) replaces the repro cron (demos, tests)."""
    where = str(project.resolve())
    tags = ["dvc", project.resolve().name]
    repro_schedule = ({"interval": timedelta(seconds=repro_every)} if repro_every
                      else {"cron": repro_cron} if repro_cron else {})
    return [
        repro.to_deployment(name="nightly", parameters={"project": where}, tags=tags,
                            description="`dvc repro` of the project, one run at a time",
                            concurrency_limit=ONE_REPRO_AT_A_TIME, **repro_schedule),
        experiment.to_deployment(
            name="ablation", parameters={"project": where, "ablation": {"sampler": "anneal"}},
            tags=tags, description="one `dvc exp run` with the ablation form's changes"),
        sweep.to_deployment(name="weekly", parameters={"project": where,
                                                       "budget": WEEKLY_BUDGET,
                                                       "seeds": WEEKLY_SEEDS},
                            tags=tags, description="the ablations declared in params.yaml, "
                            f"under the {WEEKLY_BUDGET} budget, {WEEKLY_SEEDS} seeds each",
                            **({"cron": sweep_cron} if sweep_cron else {})),
    ]


def ensure_training_limit(slots: int) -> None:
    """Create or resize the global concurrency limit that experiments hold while training."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(TRAINING_LIMIT, slots)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", help="DVC project folder (default: .)")
    parser.add_argument("--repro-cron", default=DEFAULT_REPRO_CRON,
                        help="cron of the repro deployment ('' for none)")
    parser.add_argument("--sweep-cron", default=DEFAULT_SWEEP_CRON,
                        help="cron of the sweep deployment ('' for none)")
    parser.add_argument("--repro-every", type=float, default=None,
                        help="seconds between repro runs (replaces --repro-cron)")
    parser.add_argument("--max-trainings", type=int, default=1,
                        help="experiments training at once, over every deployment (default 1)")
    parser.add_argument("--limit", type=int, default=4,
                        help="flow runs this process executes at once (default 4)")
    args = parser.parse_args(argv)
    project = Path(args.project)
    if not (project / "dvc.yaml").is_file():
        parser.error(f"{project.resolve()} has no dvc.yaml")
    ensure_training_limit(args.max_trainings)
    serve(*build_deployments(project, args.repro_cron or None, args.sweep_cron or None,
                             args.repro_every), limit=args.limit)


if __name__ == "__main__":
    main()
