"""Where the test suite's time goes, from the timeline ``tests/conftest.py`` records.

    MTB_TEST_TIMELINE=/tmp/timeline.jsonl bash scripts/run-tests.sh
    python -m benchmarks.suite_time /tmp/timeline.jsonl [--top 25]

Prints the span of the run, the CPU seconds the tests used (with the stages and DVC commands
they waited for), each worker's busy time and when it went idle (a long tail on one worker is
wall time no cut elsewhere recovers), and the files and tests that cost the most CPU.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(rows: list[dict[str, Any]], top: int) -> str:
    t0 = min(r["start"] for r in rows)
    span = max(r["end"] for r in rows) - t0
    cpu = sum(r["cpu"] for r in rows)
    out = [f"{len(rows)} tests, span {span:.0f} s, CPU {cpu:.0f} s "
           f"({cpu / span:.2f} cores busy on average)", "", "| worker | busy s | idle from s |",
           "|---|---|---|"]
    workers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        workers[r["worker"]].append(r)
    for w, rs in sorted(workers.items()):
        busy = sum(r["end"] - r["start"] for r in rs)
        out.append(f"| {w} | {busy:.0f} | {max(r['end'] for r in rs) - t0:.0f} |")
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        f = by_file[r["test"].split("::")[0]]
        f[0] += r["cpu"]
        f[1] += r["end"] - r["start"]
        f[2] += 1
    out += ["", f"Top {top} files by CPU:", "", "| file | tests | CPU s | wall s |",
            "|---|---|---|---|"]
    for name, (c, wall, n) in sorted(by_file.items(), key=lambda kv: -kv[1][0])[:top]:
        out.append(f"| {name} | {n} | {c:.1f} | {wall:.1f} |")
    out += ["", f"Top {top} tests by CPU:", "", "| test | CPU s | wall s | start s |",
            "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["cpu"])[:top]:
        out.append(f"| {r['test']} | {r['cpu']:.1f} | {r['end'] - r['start']:.1f} | "
                   f"{r['start'] - t0:.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("timeline", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    print(summary(load(args.timeline), args.top))


if __name__ == "__main__":
    main()
