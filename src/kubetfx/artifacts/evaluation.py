"""The ModelEvaluation artifact: TFMA's output (metrics, plots, validations) and
``summary.json``, the Evaluator's result in one JSON file (per-slice metrics, checks,
fairness gaps and the settings they were computed with)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubetfx.artifacts.layout import SUMMARY_FILE


def write_summary(evaluation_dir: str, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` (values JSON cannot hold are written as their text)."""
    Path(evaluation_dir, SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))


def read_summary(evaluation_dir: str) -> dict[str, Any]:
    """Read ``summary.json`` back."""
    return json.loads(Path(os.path.join(evaluation_dir, SUMMARY_FILE)).read_text())
