"""The one way the project runs DVC as a subprocess, and its one rule for experiment names.

``run_dvc`` runs ``python -m dvc`` (this interpreter's DVC, whatever PATH holds) in a project
with :func:`pipeline.env.subprocess_env`, passes each output line to ``echo`` as it arrives
(a terminal, or the Prefect run's logger), and returns the whole output. Failures come in two
kinds on purpose: :class:`DvcInfraError` when DVC could not start or another DVC process holds
the repo lock (worth retrying), :class:`DvcFailed` when DVC ran and failed (a stage failed, a
bad override: the run's own result, never retried).

A reused experiment name replaces the earlier experiment (:func:`free_name_args`): a name
means one experiment, the latest run under it. The CLI's ``ablate`` and the Prefect flows
follow the same rule, so rerunning an ablation under its name is served from DVC's run cache
and ``dvc exp show`` keeps one row per name instead of ``name-2``, ``name-3``...
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.env import subprocess_env
from pipeline.errors import UserError

# What DVC prints when another DVC process holds the repo lock.
LOCK_MARKERS = ("Unable to acquire lock", "lock is held")


class DvcError(UserError):
    """A DVC command that did not succeed; ``output`` holds its lines."""

    def __init__(self, message: str, code: int | None, output: list[str]) -> None:
        super().__init__(message)
        self.code, self.output = code, output


class DvcFailed(DvcError):
    """DVC ran and failed (a stage failed, a bad override): the run's own result."""


class DvcInfraError(DvcError):
    """DVC could not do its work for a reason outside the experiment (lock held, no dvc)."""


def dvc_command(*args: str) -> list[str]:
    """``dvc <args>`` as this interpreter's module, so the venv's DVC runs even unactivated."""
    return [sys.executable, "-m", "dvc", *args]


def run_dvc(project: Path, args: Sequence[str], *, echo: Callable[[str], None] | None = None,
            env: dict[str, str] | None = None, stdout_only: bool = False) -> str:
    """Run ``dvc <args>`` in ``project``; each output line (stderr merged) goes to ``echo``.

    Returns the output (``stdout_only``: stdout alone, e.g. JSON, with stderr kept for the
    error message); raises :class:`DvcInfraError` or :class:`DvcFailed` (see above).
    """
    try:
        proc = subprocess.Popen(dvc_command(*args), cwd=project, env=env or subprocess_env(),
                                stdout=subprocess.PIPE, text=True, bufsize=1,
                                stderr=subprocess.PIPE if stdout_only else subprocess.STDOUT)
    except OSError as err:
        raise DvcInfraError(f"could not start dvc in {project}: {err}", None, []) from err
    if stdout_only:
        output, err_text = proc.communicate()
        lines = err_text.splitlines()
    else:
        lines = []
        assert proc.stdout is not None
        for raw in proc.stdout:  # text mode: '\r' progress updates arrive as lines too
            lines.append(raw.rstrip())
            if echo is not None and lines[-1].strip():
                echo(lines[-1])
        output = "\n".join(lines)
    code = proc.wait()
    if code != 0:
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-10:]
        message = f"dvc {' '.join(args)} failed (exit {code}): " + "\n".join(errors).strip()
        kind = DvcInfraError if any(m in "\n".join(lines) for m in LOCK_MARKERS) else DvcFailed
        raise kind(message, code, lines)
    return output


def exp_show(project: Path) -> list[dict[str, Any]]:
    """``dvc exp show --json`` of the project."""
    return json.loads(run_dvc(project, ["exp", "show", "--json"], stdout_only=True) or "[]")


def experiment_list(project: Path) -> set[str]:
    """The names of the experiments of the project's current commit (``dvc exp list
    --name-only``, the scope of ``dvc exp show`` and ``exp remove NAME``): half the cost of
    ``exp show`` here (0.7 s vs 1.6 s of CPU), and unlike it, it reads no experiment's metrics,
    so a long sweep does not slow down as its experiments pile up."""
    out = run_dvc(project, ["exp", "list", "--name-only"], stdout_only=True)
    return {line.strip() for line in out.splitlines() if line.strip()}


def free_name_args(name: str, names: set[str]) -> list[str] | None:
    """The one policy for a reused experiment name: the DVC args that remove the experiment
    already called ``name`` (None: the name is free; ``names``: :func:`experiment_list`), run
    before the new one, so the new run replaces it (see the module doc). Not ``exp run -f``:
    that also forces every stage to run, where the run cache can serve an unchanged one."""
    return ["exp", "remove", name] if name in names else None


def exp_run_args(name: str, set_args: Sequence[str]) -> list[str]:
    """``exp run --temp -n NAME -S ...``: in DVC's own copy of the repo, so the workspace's
    params.yaml never carries one run's changes into the next."""
    return ["exp", "run", "--temp", "-n", name, *set_args]
