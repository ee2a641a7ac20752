"""Pictures drawn with matplotlib (headless Agg backend; files only, no windows)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def drift_label(point: Any) -> str:
    """What a drift measurement compared: ``span 2 vs span 1``, or, for data delivered
    again under the same span (or a pipeline without spans), ``span 0: new vs earlier data``."""
    if point.baseline_span == point.span:
        return f"span {point.span}: new vs earlier data"
    return f"span {point.span} vs span {point.baseline_span}"


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%m-%d %H:%M") if seconds else ""


def plot_drift(
    points: Sequence[Any],
    path: str,
    title: str = "Drift",
    failed: Sequence[Any] = (),
) -> None:
    """One panel per feature: its drift distance at each validation (a bar, red over the
    threshold), the threshold as a labelled dashed line; validations that failed before
    recording distances are marked in every panel.

    ``points`` are :class:`kubetfx.lineage.query.DriftPoint`; ``failed`` are objects with
    ``time`` and ``run_id`` (validations that failed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = sorted(
        [(p.time, "point", p) for p in points] + [(f.time, "failed", f) for f in failed],
        key=lambda c: c[0],
    )
    features = sorted({f for p in points for f in p.distances})
    if not features:
        features = ["(no distances)"]
    per_row = 2 if len(features) > 1 else 1
    rows = math.ceil(len(features) / per_row)
    fig, axes = plt.subplots(
        rows,
        per_row,
        figsize=(6.2 * per_row, 2.6 * rows + 0.9),
        dpi=110,
        squeeze=False,
        sharex=True,
    )
    xs = list(range(len(columns)))
    labels = [
        (drift_label(c[2]) if kind == "point" else "validation failed") + "\n" + _when(c[2].time)
        for c in columns
        for kind in [c[1]]
    ]
    for index, feature in enumerate(features):
        ax = axes[index // per_row][index % per_row]
        limit = next(
            (p.thresholds[feature] for p in reversed(points) if feature in p.thresholds),
            None,
        )
        over_any = False
        for x, (_, kind, item) in zip(xs, columns, strict=True):
            if kind == "failed":
                ax.axvspan(x - 0.45, x + 0.45, color="#ffebe9", zorder=0)
                continue
            value = item.distances.get(feature)
            if value is None:
                continue
            over = limit is not None and value > limit
            over_any = over_any or over
            ax.bar(x, value, width=0.6, color="#cf222e" if over else "#0969da", zorder=2)
            ax.annotate(
                f"{value:.3g}",
                (x, value),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=7,
            )
        if limit is not None:
            ax.axhline(limit, color="#57606a", linestyle="--", linewidth=1, zorder=3)
            ax.annotate(
                f"threshold {limit:g}",
                (0.0, limit),
                xycoords=("axes fraction", "data"),
                textcoords="offset points",
                xytext=(3, 3),
                ha="left",
                fontsize=7,
                color="#57606a",
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                zorder=4,
            )
        top = max(
            [limit or 0.0]
            + [p.distances.get(feature, 0.0) for p in points if p.distances.get(feature) is not None]
        )
        ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)
        ax.set_title(feature + ("  (over the threshold)" if over_any else ""), fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", linewidth=0.3, zorder=1)
        ax.set_xlim(-0.6, max(len(columns), 1) - 0.4)
        ax.set_xticks(xs, labels, fontsize=7)
    for index in range(len(features), rows * per_row):  # an odd number of features
        axes[index // per_row][index % per_row].set_visible(False)
    for column in range(per_row):  # run labels under the lowest panel of each column
        lowest = max(i for i in range(len(features)) if i % per_row == column)
        axes[lowest // per_row][column].tick_params(axis="x", labelbottom=True)
    fig.suptitle(
        f"{title}\ndistance per validation: L-infinity (categorical), Jensen-Shannon (numeric); "
        "red: over the schema's threshold",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
