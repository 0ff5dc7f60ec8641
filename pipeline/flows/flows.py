"""The Prefect flows: `repro`, `experiment` (one typed ablation) and `sweep` (named ablations).

Every flow only drives DVC in a project folder: DVC decides what to rerun and owns the cache,
so a flow run and a terminal run of the same params reuse each other's results. Experiments
run with `dvc exp run --temp` (in DVC's own temp copy of the repo) so the project's workspace
stays on its baseline while scheduled runs and experiments come and go, and each one is named
so it is easy to find in `dvc exp show`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.concurrency.sync import concurrency

from pipeline.ablation_form import (
    Ablation,
    AblationError,
    experiment_name,
    read_params,
    set_args,
    validate_overrides,
)
from pipeline.ablations import default_data_dir, sweep_plan
from pipeline.dvc_run import exp_run_args, exp_show, experiment_list, free_name_args
from pipeline.errors import UserError
from pipeline.flows.dvc import dvc
from pipeline.leaderboard import Row, as_records, rows_from_exp_show, write_leaderboard

# Global concurrency limit held while DVC trains; `serve` creates it (default: 1 slot), so
# experiments from any deployment or worker sharing this Prefect server train one at a time.
TRAINING_LIMIT = "dvc-training"
LEADERBOARD_KEY = "leaderboard"
LEADERBOARD_CSV = "leaderboard.csv"


def ensure_training_limit_exists(default_slots: int = 1) -> None:
    """Create the `dvc-training` limit (one slot) when no `serve` process has.

    Prefect's ``concurrency()`` does not limit at all when the named limit is missing, so a
    flow deployed to a work pool on a server where `serve` never ran would train two
    experiments at once. An existing limit (e.g. `serve --max-trainings 2`) is left as it is.
    """
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(TRAINING_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=TRAINING_LIMIT, limit=default_slots))
            except ObjectAlreadyExists:  # another run created it meanwhile
                pass


def project_path(project: str) -> Path:
    """The project folder, checked to be a DVC project (fails fast with a clear message)."""
    path = Path(project).expanduser().resolve()
    if not (path / "dvc.yaml").is_file() or not (path / ".dvc").is_dir():
        raise AblationError(f"{path} is not a DVC project (no dvc.yaml / .dvc)")
    return path


def leaderboard_records(project: Path) -> tuple[list[Row], list[dict[str, Any]]]:
    rows = rows_from_exp_show(exp_show(project))
    return rows, as_records(rows)


def publish_leaderboard(project: Path, budget: str | None = None) -> list[dict[str, Any]]:
    """Leaderboard of every experiment as a Prefect table artifact and `leaderboard.csv`;
    with a budget, the artifact's rows of its ablations carry their intervals."""
    rows, records = leaderboard_records(project)
    records = with_intervals(records, interval_records(project, budget),
                             read_params(project), budget)
    create_table_artifact(
        table=records, key=LEADERBOARD_KEY,
        description=f"DVC experiments of {project}, best dev `overall` first "
                    f"(also in {project / LEADERBOARD_CSV})")
    write_leaderboard(project / LEADERBOARD_CSV, rows)
    get_run_logger().info("leaderboard: %d experiments, written to %s", len(rows),
                          project / LEADERBOARD_CSV)
    return records


def metrics_markdown(name: str, row: dict[str, Any] | None) -> str:
    """The run's dev metrics as a markdown table."""
    if row is None:
        return f"# Experiment `{name}`\n\nNo metrics found in `dvc exp show`."
    lines = [f"# Experiment `{name}`", "", f"Changed params: `{row['params'] or '-'}`",
             "", "| metric | value |", "|---|---|"]
    for key, value in row.items():
        if key not in ("name", "params") and value is not None:
            lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float)
                         else f"| {key} | {value} |")
    return "\n".join(lines)


@flow(name="repro", log_prints=True)
def repro(project: str = ".", force: bool = False) -> str:
    """`dvc repro` in the project: reruns only what changed; fails with DVC's error."""
    path = project_path(project)
    return dvc(path, ["repro", *(["--force"] if force else [])])


@flow(name="experiment", flow_run_name="experiment {ablation.name}")
def experiment(ablation: Ablation, project: str = ".", publish: bool = True) -> dict[str, Any]:
    """One `dvc exp run` with the ablation's changes; publishes the leaderboard and metrics.

    The overrides are validated against the project's params.yaml before DVC runs, so a typo
    fails in seconds with the reason in the flow run's state message. An experiment already
    called ``name`` is replaced (``pipeline.dvc_run``'s rule, as ``ablate``).
    """
    logger = get_run_logger()
    path = project_path(project)
    overrides = ablation.to_overrides()
    validate_overrides(path, overrides)
    name = experiment_name(overrides, ablation.name)
    free = free_name_args(name, experiment_list(path))  # a reused name replaces it
    logger.info("experiment '%s'%s: %s", name, " (replaces the earlier one)" if free else "",
                overrides or "no changes")
    ensure_training_limit_exists()
    with concurrency(TRAINING_LIMIT, occupy=1, strict=True):
        if free:
            dvc(path, free)
        dvc(path, exp_run_args(name, set_args(overrides, read_params(path))))
    rows = publish_leaderboard(path) if publish else leaderboard_records(path)[1]
    row = next((r for r in rows if r["name"] == name), None)
    create_markdown_artifact(markdown=metrics_markdown(name, row), key="experiment-metrics",
                             description=f"dev metrics of experiment {name}")
    return {"name": name, "overrides": overrides, "metrics": row}


def interval_records(project: Path, budget: str | None) -> dict[str, dict[str, Any]]:
    """Per ablation of ``budget``: Δ overall against the baseline over its seeds, with the 95%
    interval (``pipeline.ablation_table``); empty when there is no budget or
    no baseline run of it yet."""
    from pipeline.ablation_table import load_runs, render

    if budget is None:
        return {}
    raw = read_params(project)
    try:
        runs = load_runs(project, raw, budget)
        table = render(runs, raw, budget)
    except UserError as err:
        get_run_logger().warning("no intervals for budget %s: %s", budget, err)
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in table.intervals:
        if row["metric"] != "overall":
            continue
        out[row["ablation"]] = {"seeds": row["seeds"], "delta_overall": round(row["delta"], 4),
                                "ci95_overall": f"[{row['low']:+.4f}, {row['high']:+.4f}]"}
    return out


def with_intervals(records: list[dict[str, Any]], intervals: dict[str, dict[str, Any]],
                   raw: dict[str, Any], budget: str | None) -> list[dict[str, Any]]:
    """The leaderboard records, each run of a budget's ablation with its ablation's interval
    columns (the same for every seed of it)."""
    if not intervals or budget is None:
        return records
    from pipeline.ablations import declared_ablations, parse_run_name

    names = set(declared_ablations(raw))
    out = []
    for record in records:
        parsed = parse_run_name(str(record["name"]), names, budget)
        extra = intervals.get(parsed[0], {}) if parsed else {}
        out.append({**record, "ablation": parsed[0] if parsed else None,
                    **{k: extra.get(k) for k in ("seeds", "delta_overall", "ci95_overall")}})
    return out


@flow(name="sweep")
def sweep(names: list[str] | None = None, ablations: dict[str, dict[str, str]] | None = None,
          project: str = ".", budget: str | None = None,
          data_dir: str | None = None, seeds: int = 1) -> list[dict[str, Any]]:
    """Run named ablations one after another, then publish the leaderboard.

    `ablations` (name -> {dotted key: value}) if given, else the `ablations:` section of
    params.yaml, restricted to `names` when given. `budget` names an entry of params.yaml's
    `budgets:` (e.g. cpu-small) whose changes every run shares; its experiments are named
    `<ablation>-<budget>`, or `<ablation>-<budget>-s<seed>` for each of `seeds` seeds (more
    than one: the params' seed and the ones after it, as `ablate --seeds`). All are
    validated before the first runs. Trainings queue on the `dvc-training` concurrency limit
    (one at a time by default). Under a budget, the leaderboard artifact gives each run its
    ablation's Δ overall against `baseline` with the 95% interval (`ablation-table`).
    """
    logger = get_run_logger()
    path = project_path(project)
    declared = sweep_plan(read_params(path), names, ablations, budget,
                          Path(data_dir) if data_dir else default_data_dir(path), seeds)
    for name, overrides in declared.items():
        try:
            validate_overrides(path, overrides)
        except AblationError as err:
            raise AblationError(f"ablation '{name}': {err}") from None
    failed: list[str] = []
    for name, overrides in declared.items():
        state = experiment(Ablation(name=name, overrides=overrides), project=str(path),
                           publish=False, return_state=True)
        if state.is_failed():
            failed.append(f"{name}: {state.message}")
            logger.error("ablation '%s' failed: %s", name, state.message)
    rows = publish_leaderboard(path, budget)
    if failed:
        raise RuntimeError("some ablations failed:\n" + "\n".join(failed))
    return rows
