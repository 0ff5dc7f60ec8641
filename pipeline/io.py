"""Atomic, deterministic file writing.

Everything a stage writes goes through here: write to a temporary sibling, then ``os.replace``,
so a killed process never leaves a half-written file that DVC or a later stage takes as complete.
JSON is written with sorted keys so identical inputs give byte-identical outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _linux_process(pid: int) -> tuple[str, float] | None:
    """(state letter, start time as a Unix timestamp) of ``pid`` from ``/proc``, or None.

    None means "cannot tell" (no ``/proc``, or the process ended while being read).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    state, start_ticks = fields[0], int(fields[19])
    return state, boot + start_ticks / os.sysconf("SC_CLK_TCK")


def _writer_alive(pid: int, staged_at: float) -> bool:
    """Whether the process that created a staging folder at ``staged_at`` may still be writing.

    ``os.kill(pid, 0)`` alone is not enough: a SIGKILLed writer whose parent died too can stay a
    zombie when the container's init does not reap orphans, and a busy machine can give its pid
    to a new process. Neither is a live writer: a zombie (state ``Z``/``X``) or a process that
    started after the folder was made (1 s of slack for the clock-tick rounding) is taken as gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process; /proc below still tells zombies apart
        pass
    info = _linux_process(pid)
    if info is None:
        return True
    state, started = info
    return state not in ("Z", "X") and started <= staged_at + 1.0


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the staging folders of ``target`` left by killed writers (see ``_writer_alive``).

    A SIGKILL skips ``atomic_path``'s cleanup; the leftover is never mistaken for output (it is
    a hidden sibling, not the target), but it would pile up. A live writer's folder is kept.
    """
    removed = []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp")
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        match = pattern.fullmatch(stale.name)
        if not match:
            continue
        try:
            staged_at = stale.stat().st_mtime
        except FileNotFoundError:  # its writer finished (or another cleaner won) meanwhile
            continue
        if not _writer_alive(int(match.group(1)), staged_at):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    Works for files and directories alike: whatever the caller creates at the yielded path
    replaces ``path`` in one rename. On error the temporary is removed and ``path`` untouched.
    The temporary's name carries the writer's pid, so a later write can clear what a killed
    writer left behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write a table deterministically (no pandas metadata, fixed compression)."""
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
