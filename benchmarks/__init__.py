"""Reproducible benchmarks; each script records its figures as one section of results.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.md"
HEADER = ("# Benchmark results\n\nEach section is written by one committed script (its command "
          "is in the section) with the machine and date of the run; rerunning a script replaces "
          "only its own section.\n")


def write_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section ``name`` of ``path``, leaving the others alone."""
    start, end = f"<!-- section: {name} -->", f"<!-- /section: {name} -->"
    block = f"{start}\n{text.strip()}\n{end}\n"
    current = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: block, current)
    else:
        current = current.rstrip("\n") + "\n\n" + block
    path.write_text(current, encoding="utf-8")


def cpu_model() -> str:
    """The processor's name, for the machine line of a result."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average now (every job on the machine counts), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_facts() -> dict[str, Any]:
    """What the machine is, read at run time (recorded with the figures, never written by
    hand): processor, CPUs this process may use of the total, memory, OS, Python, torch."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "cpu_model": cpu_model(), "cpus": os.cpu_count(), "cpus_usable": usable,
        "memory_gib": round(memory, 1) if memory else None,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def machine_line(facts: dict[str, Any]) -> str:
    """The recorded machine facts as one line of a results section."""
    memory = f", {facts['memory_gib']} GiB RAM" if facts.get("memory_gib") else ""
    return (f"{facts['cpus_usable']} of {facts['cpus']} CPUs ({facts['cpu_model']}){memory}, "
            f"{facts['os']}, {facts['gpu'] or 'no GPU'}; Python {facts['python']}, "
            f"torch {facts['torch']}, {facts['torch_threads']} threads")
