"""Writing lineage, function by function, on a real ML Metadata SQLite store: an execution
with its inputs and outputs, failures, cached and skipped outcomes, run contexts and the
cache lookup, read back through ML Metadata itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import EXAMPLES, STATISTICS
from kubetfx.lineage import record
from kubetfx.lineage.record import ArtifactRecord, Identity
from kubetfx.lineage.store import Store, connect

PIPELINE = "unit-pipeline"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return connect(f"sqlite:///{tmp_path}/mlmd.sqlite")


def identity(task: str, run: str = "run-1") -> Identity:
    return Identity(pipeline_name=PIPELINE, run_id=run, task_name=task, pipeline_root="/roots/unit")


def examples(uri: str, **metadata) -> ArtifactRecord:
    return ArtifactRecord("examples", uri, "system.Dataset", {"kubetfx_type": EXAMPLES, **metadata})


def events_of(store: Store, execution_id: int) -> list[pb.Event]:
    return store.call(store.mlmd.get_events_by_execution_ids, [execution_id])


def execution(store: Store, execution_id: int) -> pb.Execution:
    [found] = store.call(store.mlmd.get_executions_by_id, [execution_id])
    return found


def test_an_execution_is_recorded_running_with_its_inputs_then_completed_with_its_outputs(
    store: Store,
) -> None:
    gen = identity("example-gen")
    gen_id = record.start_execution(store, gen, params={"input_uri": "data.csv"}, inputs={})
    running = execution(store, gen_id)
    assert running.last_known_state == pb.Execution.RUNNING
    p = record.props(running)
    assert p["task_name"] == "example-gen" and p["run_id"] == "run-1" and p["pipeline_name"] == PIPELINE
    assert p["inputs"] == {"input_uri": "data.csv"} and isinstance(p["start_time"], float)

    ids = record.finish_execution(
        store,
        gen,
        gen_id,
        outputs={"examples": [examples("/roots/unit/examples", span=3)]},
        output_params={"rows": 344},
        extra={"image": "kubetfx:test", "skipped_value": None},
    )
    done = execution(store, gen_id)
    assert done.last_known_state == pb.Execution.COMPLETE
    p = record.props(done)
    assert p["outputs"] == {"rows": 344} and p["image"] == "kubetfx:test" and "skipped_value" not in p
    assert p["wall_seconds"] >= 0 and p["end_time"] >= p["start_time"]
    [artifact_id] = ids["examples"]
    [artifact] = store.call(store.mlmd.get_artifacts_by_id, [artifact_id])
    # Examples keep their KFP title as their type (system.Dataset); LIVE once published.
    [artifact_type] = store.call(store.mlmd.get_artifact_types_by_id, [artifact.type_id])
    assert artifact_type.name == "system.Dataset" and artifact.state == pb.Artifact.LIVE
    assert record.props(artifact) == {"display_name": "examples", "kubetfx_type": EXAMPLES, "span": 3}
    [output] = events_of(store, gen_id)
    assert output.type == pb.Event.OUTPUT and [s.key for s in output.path.steps] == ["examples"]

    # The consumer names the artifact by id; its input event carries the input's name.
    stats = identity("statistics-gen")
    consumed = ArtifactRecord("examples", artifact.uri, "system.Dataset", id=artifact_id)
    stats_id = record.start_execution(store, stats, params={}, inputs={"examples": [consumed]})
    [event] = events_of(store, stats_id)
    assert event.type == pb.Event.INPUT and event.artifact_id == artifact_id
    assert event.path.steps[0].key == "examples"

    # Both executions sit in the pipeline's and the run's contexts (created once).
    run = store.call(store.mlmd.get_context_by_type_and_name, record.RUN_CONTEXT, "run-1")
    pipeline = store.call(store.mlmd.get_context_by_type_and_name, record.PIPELINE_CONTEXT, PIPELINE)
    for context in (run, pipeline):
        assert {e.id for e in store.call(store.mlmd.get_executions_by_context, context.id)} == {
            gen_id,
            stats_id,
        }
    assert record.props(run) == {"pipeline_name": PIPELINE, "pipeline_root": "/roots/unit"}


def test_an_input_from_outside_is_registered_and_one_known_by_uri_is_reused(store: Store) -> None:
    outside = examples("gs://elsewhere/examples")
    first = record.start_execution(store, identity("a"), params={}, inputs={"examples": [outside]})
    [event] = events_of(store, first)
    [registered] = store.call(store.mlmd.get_artifacts_by_id, [event.artifact_id])
    assert registered.uri == "gs://elsewhere/examples" and registered.state == pb.Artifact.LIVE
    assert record.find_artifact(store, "gs://elsewhere/examples").id == registered.id
    # Without an id, the newest LIVE artifact at the same URI is the input (the join key).
    second = record.start_execution(store, identity("b"), params={}, inputs={"examples": [outside]})
    assert [e.artifact_id for e in events_of(store, second)] == [registered.id]
    assert record.find_artifact(store, "gs://nowhere") is None


def test_a_list_of_artifacts_gets_one_indexed_event_each(store: Store) -> None:
    task = identity("fan-out")
    execution_id = record.start_execution(store, task, params={}, inputs={})
    shards = [examples(f"/roots/unit/shard-{i}") for i in range(3)]
    ids = record.finish_execution(store, task, execution_id, outputs={"shards": shards}, output_params={})
    assert len(ids["shards"]) == 3
    paths = sorted((e.path.steps[0].key, e.path.steps[1].index) for e in events_of(store, execution_id))
    assert paths == [("shards", 0), ("shards", 1), ("shards", 2)]
    outputs = record.outputs_of(store, execution_id)
    assert [a.uri for a in outputs["shards"]] == [s.uri for s in shards]


def test_a_failure_is_recorded_with_its_reason_and_never_overwrites_a_finished_task(store: Store) -> None:
    task = identity("trainer")
    failed = record.start_execution(store, task, params={}, inputs={})
    record.fail_execution(store, failed, "loss is NaN " + "x" * 5000)
    got = execution(store, failed)
    assert got.last_known_state == pb.Execution.FAILED
    error = record.props(got)["error"]
    assert error.startswith("loss is NaN") and len(error) == 4000
    assert record.outputs_of(store, failed) == {}

    finished = record.start_execution(store, task, params={}, inputs={})
    record.finish_execution(store, task, finished, outputs={}, output_params={})
    record.fail_execution(store, finished, "too late")
    assert execution(store, finished).last_known_state == pb.Execution.COMPLETE
    assert "error" not in record.props(execution(store, finished))


def test_a_cached_outcome_reuses_the_outputs_and_is_found_by_its_cache_key(store: Store) -> None:
    task = identity("statistics-gen")
    key = {"cache_fingerprint": "abc123"}
    first = record.start_execution(store, task, params={}, inputs={}, extra=key)
    statistics = ArtifactRecord(
        "statistics", "/roots/unit/stats", "system.Artifact", {"kubetfx_type": STATISTICS}
    )
    ids = record.finish_execution(store, task, first, outputs={"statistics": [statistics]}, output_params={})
    # A system.Artifact is typed in lineage by its kubetfx kind, so queries tell kinds apart.
    [artifact] = store.call(store.mlmd.get_artifacts_by_id, ids["statistics"])
    [artifact_type] = store.call(store.mlmd.get_artifact_types_by_id, [artifact.type_id])
    assert artifact_type.name == STATISTICS
    running = record.start_execution(store, identity("other"), params={}, inputs={}, extra=key)
    assert [e.id for e in record.find_cached(store, "abc123")] == [first]  # COMPLETE ones only

    reused = ArtifactRecord("statistics", "/roots/unit/stats", "system.Artifact", id=ids["statistics"][0])
    cached = record.record_outcome(
        store,
        identity("statistics-gen", run="run-2"),
        state=pb.Execution.CACHED,
        params={},
        outputs={"statistics": [reused]},
        extra=key,
    )
    got = execution(store, cached)
    assert got.last_known_state == pb.Execution.CACHED and "end_time" in record.props(got)
    assert [a.id for a in record.outputs_of(store, cached)["statistics"]] == ids["statistics"]
    # Cached executions are not themselves cache entries; the newest COMPLETE comes first.
    second = record.start_execution(store, task, params={}, inputs={}, extra=key)
    record.finish_execution(store, task, second, outputs={}, output_params={})
    assert [e.id for e in record.find_cached(store, "abc123")] == [second, first]
    assert running not in [e.id for e in record.find_cached(store, "abc123")]
    assert record.find_cached(store, "no-such-key") == []


def test_an_input_event_is_added_once(store: Store) -> None:
    task = identity("evaluator")
    producer = record.start_execution(store, identity("trainer"), params={}, inputs={})
    [model_id] = record.finish_execution(
        store,
        identity("trainer"),
        producer,
        outputs={"model": [ArtifactRecord("model", "/roots/unit/model", "system.Model")]},
        output_params={},
    )["model"]
    evaluator = record.start_execution(store, task, params={}, inputs={})
    assert record.add_input_event(store, evaluator, model_id, "baseline_model") is True
    assert record.add_input_event(store, evaluator, model_id, "baseline_model") is False
    [event] = events_of(store, evaluator)
    assert event.type == pb.Event.INPUT and event.path.steps[0].key == "baseline_model"


def test_a_run_context_is_created_then_updated_and_ends_with_its_state(store: Store) -> None:
    run = identity("", run="run-9")
    run_id = record.update_run(store, run, state="RUNNING", parameters={"epochs": 2}, ignored=None)
    context = store.call(store.mlmd.get_context_by_type_and_name, record.RUN_CONTEXT, "run-9")
    assert context.id == run_id
    p = record.props(context)
    assert p["state"] == "RUNNING" and p["parameters"] == {"epochs": 2} and "ignored" not in p
    assert "start_time" in p and "end_time" not in p
    assert store.call(store.mlmd.get_context_by_type_and_name, record.PIPELINE_CONTEXT, PIPELINE)

    assert record.update_run(store, run, state="SUCCEEDED", seconds=1.5) == run_id
    p = record.props(store.call(store.mlmd.get_context_by_type_and_name, record.RUN_CONTEXT, "run-9"))
    assert p["state"] == "SUCCEEDED" and p["seconds"] == 1.5 and p["parameters"] == {"epochs": 2}
    assert p["end_time"] >= p["start_time"]


@pytest.mark.parametrize(
    "value",
    [True, 0, -7, 2.5, "text", "", {"a": [1, "b", {"c": None}]}, {}],
    ids=["bool", "zero", "int", "float", "str", "empty-str", "dict", "empty-dict"],
)
def test_a_property_reads_back_as_it_was_written(value) -> None:
    stored = pb.Value()
    record.to_value(value, stored)
    back = record.from_value(stored)
    assert back == value and type(back) is type(value)


def test_a_list_property_is_stored_as_json_text() -> None:
    stored = pb.Value()
    record.to_value([1, "a"], stored)
    assert record.from_value(stored) == '[1, "a"]'


def test_output_records_take_the_executors_document_over_the_declared_outputs(tmp_path: Path) -> None:
    final = tmp_path / "examples"
    (final / "Split-train").mkdir(parents=True)
    (final / "Split-train" / "data.txt").write_text("rows")
    staged = str(tmp_path / "examples.partial-1")
    executor_input = {
        "outputs": {
            "artifacts": {
                "examples": {
                    "artifacts": [{"uri": staged, "type": {"schemaTitle": "system.Dataset"}, "metadata": {}}]
                },
                "report": {
                    "artifacts": [{"uri": str(tmp_path / "report"), "type": {"schemaTitle": "system.HTML"}}]
                },
                record.EXECUTOR_LOGS: {"artifacts": [{"uri": str(tmp_path / "logs")}]},
            }
        }
    }
    document = {
        "artifacts": {"examples": {"artifacts": [{"metadata": {"kubetfx_type": EXAMPLES, "span": 1}}]}}
    }
    records = record.output_records(executor_input, document, {staged: str(final)})
    assert set(records) == {"examples", "report"}  # the launcher's log output is never the task's
    [written] = records["examples"]
    assert written.uri == str(final) and written.schema_title == "system.Dataset"
    assert written.metadata["span"] == 1 and written.metadata["kubetfx_type"] == EXAMPLES
    assert written.metadata[record.FINGERPRINT_KEY]  # the content hash of what was published
    [declared] = records["report"]
    assert declared.schema_title == "system.HTML" and declared.uri == str(tmp_path / "report")
