"""Reproducible benchmarks; each script records its figures as one section of results.md."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pipeline.machine import cpu_model, machine_facts

__all__ = ["cpu_model", "load_average", "machine_facts", "machine_line", "write_section"]

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


def load_average() -> float | None:
    """The 1-minute load average now (every job on the machine counts), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_line(facts: dict[str, Any]) -> str:
    """The recorded machine facts as one line of a results section."""
    memory = f", {facts['memory_gib']} GiB RAM" if facts.get("memory_gib") else ""
    return (f"{facts['cpus_usable']} of {facts['cpus']} CPUs ({facts['cpu_model']}){memory}, "
            f"{facts['os']}, {facts['gpu'] or 'no GPU'}; Python {facts['python']}, "
            f"torch {facts['torch']}, {facts['torch_threads']} threads")
