"""What ``benchmarks/peers.py`` writes from its curves: table, CSV, plot, and this project's curve.

Pure functions over plain data (no training, no model), so the numbers a reader sees are
tested on their own (tests/unit/test_peers_bench.py). An *entry* is one line of the
comparison, a peer or this project::

    {"name": "trainer-sst", "label": "HF Trainer, SST-5", "tasks": ["sst"],
     "curve": [{"step": 0, "train_seconds": 0.0, "dev": {"sst": 0.21}}, ...],
     "final": {"dev": {"sst": 0.46}, "dev_rows": "full"}}

``train_seconds`` counts the training loop only (dev scoring left out), as the project's own
curve does (``pipeline/train/loop.py``), so the x axes of all entries are comparable.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

# Where a CS224N submission starts to be competitive (issue 16, item 5).
THRESHOLDS: dict[str, float] = {"sts": 0.85, "para": 0.80, "sst": 0.45}
TASK_NAMES = {"sst": "sst acc", "para": "para acc", "sts": "sts r"}
CSV_HEADER = ["peer", "task", "train_seconds", "score"]
PROJECT_NAME = "project"


def time_to_threshold(curve: list[dict[str, Any]], task: str, threshold: float) -> float | None:
    """Training seconds of the first curve point whose ``task`` score is at or above
    ``threshold`` (None when none is). No interpolation: a curve is only known where dev
    was scored, so the answer is as coarse as the scoring interval, and says so honestly."""
    for point in sorted(curve, key=lambda p: (p["train_seconds"], p.get("step", 0))):
        score = point["dev"].get(task)
        if score is not None and score >= threshold:
            return float(point["train_seconds"])
    return None


def project_entry(best: dict[str, Any]) -> dict[str, Any]:
    """This project's line from ``benchmarks/best.json``: its ``curve`` (one point per scored
    epoch, ``{epoch, step, train_seconds, dev}``) and its final ``dev`` scores."""
    curve = best.get("curve")
    if not isinstance(curve, list) or not curve:
        raise ValueError("benchmarks/best.json has no 'curve' list (record it with the "
                         "current `record-best`)")
    points = [{"step": int(p.get("step", 0)), "train_seconds": float(p.get("train_seconds", 0.0)),
               "dev": {t: float(v) for t, v in p["dev"].items()}} for p in curve]
    budget = best.get("budget", "leaderboard")
    final = best.get("dev") or points[-1]["dev"]
    return {"name": PROJECT_NAME, "label": f"this project ({budget} preset)",
            "tasks": sorted(t for t in THRESHOLDS if t in final),
            "config": {"command": best.get("command"), "commit": best.get("commit")},
            "curve": points, "final": {"dev": dict(final), "dev_rows": "full"}}


def read_project_entry(path: Path) -> dict[str, Any] | None:
    """:func:`project_entry` of ``path``, or None when the file is not there yet."""
    import json

    if not path.is_file():
        return None
    return project_entry(json.loads(path.read_text(encoding="utf-8")))


def trained_seconds(entry: dict[str, Any]) -> float:
    """The training seconds of an entry's last curve point (its whole run)."""
    return max((float(p["train_seconds"]) for p in entry["curve"]), default=0.0)


def _threshold_cell(entry: dict[str, Any], task: str) -> str:
    if task not in entry["tasks"]:
        return "not scored"
    seconds = time_to_threshold(entry["curve"], task, THRESHOLDS[task])
    if seconds is None:
        return f"not reached in {trained_seconds(entry):.0f} s"
    return f"{seconds:.0f} s"


def _score_cell(entry: dict[str, Any], task: str) -> str:
    score = entry["final"]["dev"].get(task)
    return "—" if score is None else f"{score:.3f}"


def render_table(entries: list[dict[str, Any]]) -> str:
    """Markdown: per entry, seconds to each threshold ("not scored" for a task the entry has
    no score for), then the final dev scores."""
    tasks = list(THRESHOLDS)
    head = (["run"] + [f"s to {TASK_NAMES[t]} {THRESHOLDS[t]:.2f}" for t in tasks]
            + [f"final {TASK_NAMES[t]}" for t in tasks] + ["trained s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        cells = ([e["label"]] + [_threshold_cell(e, t) for t in tasks]
                 + [_score_cell(e, t) for t in tasks] + [f"{trained_seconds(e):.0f}"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_rows(entries: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """``(peer, task, train_seconds, score)`` per curve point and scored task (the DVC plot)."""
    rows = []
    for e in entries:
        for p in e["curve"]:
            for task in THRESHOLDS:
                if task in e["tasks"] and p["dev"].get(task) is not None:
                    rows.append((e["name"], task, round(float(p["train_seconds"]), 1),
                                 round(float(p["dev"][task]), 4)))
    return rows


def write_curves_csv(path: Path, entries: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER)
        w.writerows(curve_rows(entries))


def plot_curves(path: Path, entries: list[dict[str, Any]]) -> None:
    """Dev score against training seconds: one panel per task, one line per entry, and the
    threshold of the table as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(THRESHOLDS)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for e in entries:
            pts = sorted((p["train_seconds"], p["dev"][task]) for p in e["curve"]
                         if task in e["tasks"] and p["dev"].get(task) is not None)
            if pts:
                style = "-" if e["name"] == PROJECT_NAME else "--"
                ax.plot([x for x, _ in pts], [y for _, y in pts], style, marker="o",
                        markersize=3, label=e["label"])
        ax.axhline(THRESHOLDS[task], color="grey", linestyle=":", linewidth=1)
        ax.set_title(TASK_NAMES[task])
        ax.set_xlabel("training seconds (dev scoring excluded)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("dev score")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
