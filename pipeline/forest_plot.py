"""The forest plot of the ablation table: each ablation's difference to baseline, with its 95%
interval, one panel per dev metric; a PNG committed beside ``benchmarks/ablations.md``.

Drawn with matplotlib's Agg backend (no display needed). The same numbers are in the
intervals CSV, which ``dvc plots show`` draws with the ``forest`` template in ``.dvc/plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io import atomic_path

PANELS = ("overall", "sst", "para", "sts")


def forest_plot(rows: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Draw ``rows`` (ablation, metric, delta, low, high, ...) to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in PANELS if any(r["metric"] == m for r in rows)] or ["overall"]
    names = list(dict.fromkeys(r["ablation"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), sharey=True, squeeze=False,
                             figsize=(3.2 * len(panels) + 1.5, 0.35 * len(names) + 1.6))
    for ax, metric in zip(axes[0], panels, strict=True):
        for k, name in enumerate(names):
            row = next((r for r in rows if r["ablation"] == name and r["metric"] == metric),
                       None)
            if row is None:
                continue
            detected = row["low"] > 0 or row["high"] < 0
            color = "tab:blue" if detected else "tab:gray"
            ax.hlines(k, row["low"], row["high"], color=color, linewidth=2)
            ax.plot(row["delta"], k, "o", color=color, markersize=4)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"Δ {metric}")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].invert_yaxis()
    fig.suptitle(title + " (grey: interval includes 0)", fontsize=10)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
