"""Benchmark scripts: each prints figures side by side with a baseline from the same run.

Each script also prints one ``BENCH-RESULT {json}`` line per target it checks (see
:func:`verdict`); ``python -m benchmarks.all`` (``make bench``) runs them all and
gathers those lines into one table: figure, baseline, ratio, target, pass / falls short.

Not part of the wheel: they measure kubetfx rather than being it. Run them from the
repository root (``python -m benchmarks.<name>``) with the project's environment, where
kubetfx is installed; they import it like any user would.
"""

from __future__ import annotations

import json

MARK = "BENCH-RESULT "


def verdict(
    figure: str,
    value: float,
    baseline: float | None,
    ratio: float | None,
    target: str,
    passed: bool,
    unit: str = "s",
) -> None:
    """Print one machine-readable result line (and nothing else changes in the script's output)."""
    print(
        MARK
        + json.dumps(
            {
                "figure": figure,
                "value": value,
                "unit": unit,
                "baseline": baseline,
                "ratio": ratio,
                "target": target,
                "pass": bool(passed),
            }
        ),
        flush=True,
    )
