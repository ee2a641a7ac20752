"""The reference pipelines' shape, read from the compiled YAML the cluster and the local
runner run: the serving check needs only the trained model and the examples, so it runs
beside the model resolver and the Evaluator, and the Pusher judges its record."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _ancestors(tasks: dict, name: str) -> set[str]:
    found: set[str] = set()
    todo = list(tasks[name].get("dependentTasks", []))
    while todo:
        task = todo.pop()
        if task not in found:
            found.add(task)
            todo.extend(tasks[task].get("dependentTasks", []))
    return found


def _dags(ir: dict) -> dict[str, dict]:
    """Every DAG of the pipeline by component name ("root" for the pipeline's own)."""
    dags = {"root": ir["root"]["dag"]["tasks"]}
    dags.update({name: c["dag"]["tasks"] for name, c in ir["components"].items() if "dag" in c})
    return dags


def _holding(dags: dict[str, dict], task: str) -> tuple[str, dict]:
    [(name, tasks)] = [(name, tasks) for name, tasks in dags.items() if task in tasks]
    return name, tasks


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
def test_the_serving_check_runs_beside_the_evaluator_and_feeds_the_pusher(pipeline: str) -> None:
    ir = next(yaml.safe_load_all((REPO / f"pipelines/{pipeline}/pipeline.yaml").read_text()))
    dags = _dags(ir)
    _, tasks = _holding(dags, "serving-check")
    check = _ancestors(tasks, "serving-check")
    assert "trainer" in check and not {"evaluator", "model-resolver"} & check, check
    assert "serving-check" not in _ancestors(tasks, "evaluator")
    model = tasks["serving-check"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert model == {"outputArtifactKey": "model", "producerTask": "trainer"}

    # The Pusher, inside the blessed condition, takes the check's record of the same model.
    inner, pushing = _holding(dags, "pusher")
    [parent] = [t for t in tasks.values() if t.get("componentRef", {}).get("name") == inner]
    assert {"evaluator", "serving-check"} <= set(parent["dependentTasks"])
    pusher = pushing["pusher"]["inputs"]["artifacts"]
    origin = {
        key: parent["inputs"]["artifacts"][value["componentInputArtifact"]]["taskOutputArtifact"]
        for key, value in pusher.items()
    }
    assert origin["serving_check"] == {"outputArtifactKey": "check", "producerTask": "serving-check"}
    assert origin["model"]["producerTask"] == "trainer" and "examples" not in origin
