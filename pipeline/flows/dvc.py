"""DVC as a Prefect task: the shared runner (:mod:`pipeline.dvc_run`) with its output streamed,
line by line, into the Prefect run's logs.

An infrastructure failure (DVC could not start, or the repo lock is held by another DVC
process) is retried; a stage that fails is the experiment's own result and is never retried,
so its error goes straight to the flow run.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from pipeline import dvc_run
from pipeline.dvc_run import DvcInfraError


def run_dvc(project: Path, args: list[str], *, stream: bool = True) -> str:
    """``dvc <args>`` in ``project``, each output line logged (``stream``), the command too."""
    logger = get_run_logger()
    logger.info("$ dvc %s  (in %s)", " ".join(args), project)
    return dvc_run.run_dvc(project, args, echo=logger.info if stream else None)


def retry_infra_only(task_: object, task_run: TaskRun, state: State) -> bool:
    """Prefect retry condition: retry only when the failure was an infrastructure error."""
    try:
        state.result()
    except DvcInfraError:
        return True
    except Exception:
        return False
    return False


@task(retries=3, retry_delay_seconds=[5, 15, 30], retry_condition_fn=retry_infra_only,
      task_run_name="dvc {args}")
def dvc(project: Path, args: list[str]) -> str:
    """`run_dvc` as a Prefect task: retried on a held lock or a failed start, never otherwise."""
    return run_dvc(project, args)
