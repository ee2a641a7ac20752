"""NaN and infinities never reach what the KFP launcher or a metadata store reads, and a
task whose lineage write fails never stays RUNNING.

A diverged training (a huge learning rate) reports a NaN loss. The task below is a real
KFP Python function run by ``kubetfx.task`` (KFP's own executor inside), recording into
a real ML Metadata store (SQLite); its NaN and infinity come from the function, as a
diverged Keras fit's would.
"""

import json
import math
import textwrap
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import task as kubetfx_task
from kubetfx.lineage import record
from kubetfx.lineage.store import connect

DIVERGED = textwrap.dedent(
    """
    from kfp.dsl import Model, Output


    def train(learning_rate: float, model: Output[Model]) -> float:
        with open(model.path, "w") as f:
            f.write("weights")
        model.metadata["loss"] = float("nan") if learning_rate > 1e6 else 0.1
        model.metadata["history"] = {"loss": [0.9, float("inf"), float("nan")]}
        return float("-inf") if learning_rate > 1e6 else 0.9
    """
)


def _strict_json(text: str) -> object:
    """Parse JSON as protojson would: a bare NaN or Infinity is an error."""

    def refuse(token: str) -> None:
        raise ValueError(f"bare {token} in JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def diverged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path, str]:
    for name in ("KFP_POD_NAME", "KUBETFX_TASK_STATE", "KUBETFX_DIE_WITH_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    monkeypatch.setenv("KUBETFX_METADATA", url)
    monkeypatch.setenv("KUBETFX_PIPELINE_NAME", "non-finite")
    monkeypatch.setenv("KUBETFX_RUN_ID", "run-1")
    monkeypatch.setenv("KUBETFX_TASK_NAME", "trainer")
    module = tmp_path / "diverged.py"
    module.write_text(DIVERGED)
    output_file = tmp_path / "out" / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": {"learning_rate": 1e9}},
        "outputs": {
            "artifacts": {
                "model": {
                    "artifacts": [
                        {
                            "name": "model",
                            "type": {"schemaTitle": "system.Model"},
                            "uri": str(tmp_path / "model"),
                        }
                    ]
                }
            },
            "parameters": {"Output": {"outputFile": str(tmp_path / "out" / "Output")}},
            "outputFile": str(output_file),
        },
    }
    argv = [
        "--executor_input",
        json.dumps(executor_input),
        "--function_to_execute",
        "train",
        "--component_module_path",
        str(module),
    ]
    return argv, output_file, url


def _executions(url: str) -> list[pb.Execution]:
    store = connect(url)
    return list(store.call(store.mlmd.get_executions))


def test_a_nan_loss_is_recorded_by_name_and_the_task_completes(diverged) -> None:
    argv, output_file, url = diverged
    assert kubetfx_task.run(argv) == 0
    document = _strict_json(output_file.read_text())  # what the launcher reads
    metadata = document["artifacts"]["model"]["artifacts"][0]["metadata"]
    assert metadata["loss"] == "NaN"
    assert metadata["history"] == {"loss": [0.9, "Infinity", "NaN"]}
    assert document["parameterValues"]["Output"] == "-Infinity"
    [execution] = _executions(url)
    assert execution.last_known_state == pb.Execution.COMPLETE
    props = record.props(execution)
    assert props["outputs"] == {"Output": "-Infinity"}
    assert "artifacts.model.artifacts[0].metadata.loss" in props["non_finite"]
    store = connect(url)
    [model] = store.call(store.mlmd.get_artifacts_by_uri, str(Path(output_file).parents[1] / "model"))
    assert record.props(model)["loss"] == "NaN"


def test_a_failed_lineage_write_marks_the_execution_failed(diverged, monkeypatch) -> None:
    argv, _, url = diverged

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away mid-write")

    monkeypatch.setattr(record, "finish_execution", broken)
    assert kubetfx_task.run(argv) == 1
    [execution] = _executions(url)
    assert execution.last_known_state == pb.Execution.FAILED
    assert "the store went away mid-write" in record.props(execution)["error"]


def test_to_value_and_finite_name_every_non_finite_number() -> None:
    for number, name in ((math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")):
        value = pb.Value()
        record.to_value(number, value)
        assert value.string_value == name
        struct = pb.Value()
        record.to_value({"m": [1.5, number]}, struct)
        assert record.from_value(struct) == {"m": [1.5, name]}
    found: list[str] = []
    assert record.finite({"a": {"b": [0.0, math.nan]}, "c": 1.0}, found) == {
        "a": {"b": [0.0, "NaN"]},
        "c": 1.0,
    }
    assert found == ["a.b[1]"]
