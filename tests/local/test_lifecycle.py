"""One task's lifecycle, as the task wrapper and the runner's plain-KFP path go through it."""

from pathlib import Path

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lifecycle import Recorder, TaskLifecycle
from kubetfx.lineage.record import Identity
from kubetfx.lineage.store import connect


def _executor_input(out: Path) -> dict:
    return {
        "inputs": {"parameterValues": {}, "artifacts": {}},
        "outputs": {
            "parameters": {},
            "artifacts": {
                "data": {
                    "artifacts": [
                        {"name": "data", "type": {"schemaTitle": "system.Dataset"}, "uri": str(out)}
                    ]
                }
            },
            "outputFile": str(out.parent / "executor_output.json"),
        },
    }


def test_outputs_appear_only_on_success_and_the_execution_says_so(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    recorder = Recorder(store, Identity(pipeline_name="p", run_id="r1", task_name="t"))

    failed = TaskLifecycle(_executor_input(tmp_path / "a" / "data"), recorder)
    staged = failed.stage()
    [staging] = staged
    failed.start({"n": 1}, {})
    Path(staging).mkdir(parents=True)
    Path(staging, "part").write_text("half")
    failed.fail("killed")
    assert not Path(staging).exists() and not (tmp_path / "a" / "data").exists()
    [execution] = store.mlmd.get_executions_by_id([failed.execution_id])
    assert execution.last_known_state == pb.Execution.FAILED

    done = TaskLifecycle(_executor_input(tmp_path / "b" / "data"), recorder)
    [staging] = done.stage()
    done.start({"n": 1}, {})
    Path(staging).mkdir(parents=True)
    Path(staging, "part").write_text("whole")
    outputs = done.publish({})
    assert (tmp_path / "b" / "data" / "part").read_text() == "whole"
    assert [r.uri for r in outputs["data"]] == [str(tmp_path / "b" / "data")]
    ids = done.record(outputs, {"rows": 3})
    [execution] = store.mlmd.get_executions_by_id([done.execution_id])
    assert execution.last_known_state == pb.Execution.COMPLETE
    [artifact] = store.mlmd.get_artifacts_by_id(ids["data"])
    assert artifact.uri == str(tmp_path / "b" / "data")


def test_without_lineage_outputs_are_still_staged_and_published(tmp_path: Path) -> None:
    life = TaskLifecycle(_executor_input(tmp_path / "data"), None)
    assert life.start({}, {}) is None
    [staging] = life.stage()
    Path(staging).write_text("x")
    life.publish({})
    assert (tmp_path / "data").read_text() == "x"
    assert life.record({}, {}) == {}
