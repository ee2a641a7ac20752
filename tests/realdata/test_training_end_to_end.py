"""The reference training pipeline on real raw tables, schema inferred (``schema_file=``):
every task, from ExampleGen to Pusher, succeeds with the table's own headers (spaces,
parentheses, slashes) and columns (IDs, dates, free text)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")


@pytest.mark.slow
def test_reference_pipeline_trains_evaluates_and_pushes(workdir: Path, cli, labelled_dataset) -> None:
    dataset = labelled_dataset
    params = {
        "input_uri": str(dataset.path()),
        "schema_file": "",
        "label_key": dataset.label,
        "slice_features": json.dumps([dataset.category] if dataset.category != dataset.label else []),
        "model_name": dataset.name.replace("-", "_"),
        "epochs": "10",
        "min_accuracy": "0.0",  # the gate is not under test here: the wiring is
        "max_accuracy_drop": "1.0",
        "max_fairness_gap": "1.0",
    }
    args = [a for name, value in params.items() for a in ("--param", f"{name}={value}")]
    run = cli("run", PIPELINE, *args, timeout=1500)
    assert run.returncode == 0, run.stdout + run.stderr
    for task in ("example-validator", "trainer", "evaluator", "pusher"):
        assert re.search(rf"^(condition-\d+/)?{task}\s+SUCCEEDED", run.stdout, re.MULTILINE), run.stdout
