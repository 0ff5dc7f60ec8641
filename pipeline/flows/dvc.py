"""Run one DVC command with its output streamed, line by line, into the Prefect run's logs.

Failures are split in two on purpose: an infrastructure failure (DVC could not start, or the
repo lock is held by another DVC process) is worth retrying; a stage that fails is the
experiment's own result and is never retried, so its error goes straight to the flow run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from pipeline.dvc_env import dvc_env

# What DVC prints when another DVC process holds the repo lock.
LOCK_MARKERS = ("Unable to acquire lock", "lock is held")


class DvcFailed(RuntimeError):
    """DVC ran and failed (a stage failed, a bad override): the run's own result, not retried."""


class DvcInfraError(RuntimeError):
    """DVC could not do its work for a reason outside the experiment (lock held, no dvc)."""


def dvc_executable() -> list[str]:
    """`dvc` from the same environment as this interpreter, so served runs find the venv's."""
    beside = Path(sys.executable).parent / "dvc"
    return [str(beside)] if beside.exists() else ["dvc"]


def run_dvc(project: Path, args: Sequence[str], *, stream: bool = True) -> str:
    """Run `dvc <args>` in `project`, log each output line, return the whole output.

    Raises DvcInfraError when DVC cannot start or the repo lock is held, DvcFailed with DVC's
    own error lines when the command fails for any other reason.
    """
    logger = get_run_logger()
    cmd = [*dvc_executable(), *args]
    logger.info("$ %s  (in %s)", " ".join(cmd[-len(args) - 1:]), project)
    try:
        proc = subprocess.Popen(cmd, cwd=project, env=dvc_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as err:
        raise DvcInfraError(f"could not start dvc in {project}: {err}") from err
    lines: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:  # text mode: '\r' progress updates arrive as lines too
        line = raw.rstrip()
        lines.append(line)
        if stream and line.strip():
            logger.info(line)
    code = proc.wait()
    output = "\n".join(lines)
    if code != 0:
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-10:]
        message = f"dvc {' '.join(args)} failed (exit {code}): " + "\n".join(errors).strip()
        if any(marker in output for marker in LOCK_MARKERS):
            raise DvcInfraError(message)
        raise DvcFailed(message)
    return output


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
