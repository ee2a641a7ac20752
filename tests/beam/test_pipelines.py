"""``beam_pipeline_args`` in the compiled pipelines: a LIST parameter of each reference
pipeline that reaches its four data tasks (inside conditions too)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA_TASKS = {"example-gen", "statistics-gen", "example-validator", "evaluator"}


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
def test_the_pipeline_parameter_reaches_every_data_task(pipeline: str) -> None:
    spec = next(yaml.safe_load_all((REPO / "pipelines" / pipeline / "pipeline.yaml").read_text()))
    parameter = spec["root"]["inputDefinitions"]["parameters"]["beam_pipeline_args"]
    assert (parameter["parameterType"], parameter["defaultValue"]) == ("LIST", [])
    reached = {}
    for component in [spec["root"], *spec["components"].values()]:
        for name, task in component.get("dag", {}).get("tasks", {}).items():
            given = task.get("inputs", {}).get("parameters", {}).get("beam_pipeline_args")
            if given is not None:
                reached[name] = given["componentInputParameter"]
    assert set(reached) == DATA_TASKS
    # from the root parameter, directly or through the condition's channel
    assert set(reached.values()) <= {"beam_pipeline_args", "pipelinechannel--beam_pipeline_args"}
