"""Pictures drawn with matplotlib (headless Agg backend; files only, no windows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_drift(points: Sequence[Any], path: str, title: str = "Drift") -> None:
    """One line per feature: drift distance per validation run, thresholds dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = sorted({f for p in points for f in p.distances})
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    xs = list(range(len(points)))
    for feature in features:
        ys = [p.distances.get(feature) for p in points]
        (line,) = ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=feature)
        limits = [p.thresholds.get(feature) for p in points if feature in p.thresholds]
        if limits:
            ax.axhline(limits[-1], color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xticks(xs, [f"span {p.span}\nvs {p.baseline_span}" for p in points], fontsize=8)
    ax.set_ylabel("distance (L-inf / Jensen-Shannon)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
