"""Reading lineage back, function by function, on a real ML Metadata SQLite store written
with ``kubetfx.lineage.record``: runs, one run by id or prefix, a run's tasks with their
outputs, where statistics came from, and a pipeline's drift series."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetfx.artifacts.kinds import ANOMALIES, EXAMPLES, STATISTICS
from kubetfx.errors import KubetfxError
from kubetfx.lineage import query, record
from kubetfx.lineage.record import ArtifactRecord, Identity
from kubetfx.lineage.store import Store, connect


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return connect(f"sqlite:///{tmp_path}/mlmd.sqlite")


def task(
    store: Store,
    pipeline: str,
    run: str,
    name: str,
    *,
    inputs: dict[str, list[ArtifactRecord]] | None = None,
    outputs: dict[str, list[ArtifactRecord]] | None = None,
) -> tuple[int, dict[str, list[int]]]:
    """One finished task as the task wrapper records it: (execution id, output ids)."""
    who = Identity(pipeline_name=pipeline, run_id=run, task_name=name)
    execution_id = record.start_execution(store, who, params={}, inputs=inputs or {})
    ids = record.finish_execution(store, who, execution_id, outputs=outputs or {}, output_params={})
    return execution_id, ids


def artifact(key: str, uri: str, kind: str, **metadata) -> ArtifactRecord:
    title = "system.Dataset" if kind == EXAMPLES else "system.Artifact"
    return ArtifactRecord(key, uri, title, {"kubetfx_type": kind, **metadata})


def started(store: Store, pipeline: str, run: str, start: float, **fields) -> None:
    record.update_run(store, Identity(pipeline, run, ""), **fields)
    # Runs are ordered by start time: set it, rather than depend on the clock's resolution.
    context = store.call(store.mlmd.get_context_by_type_and_name, record.RUN_CONTEXT, run)
    record.to_value(start, context.custom_properties["start_time"])
    store.call(store.mlmd.put_contexts, [context])


def test_runs_are_listed_newest_first_per_pipeline_and_limited(store: Store) -> None:
    started(store, "training", "run-a", 100.0, state="SUCCEEDED", seconds=12.5)
    started(store, "training", "run-b", 300.0, state="FAILED")
    started(store, "other", "run-c", 200.0, state="RUNNING")
    assert [r.run_id for r in query.list_runs(store)] == ["run-b", "run-c", "run-a"]
    assert [r.run_id for r in query.list_runs(store, "training")] == ["run-b", "run-a"]
    assert [r.run_id for r in query.list_runs(store, limit=1)] == ["run-b"]
    assert query.list_runs(store, "no-such-pipeline") == []
    first = query.list_runs(store, "training")[-1]
    assert (first.pipeline_name, first.state, first.start_time, first.seconds) == (
        "training",
        "SUCCEEDED",
        100.0,
        12.5,
    )


def test_a_run_is_found_by_id_or_unique_prefix_and_a_wrong_one_says_why(store: Store) -> None:
    started(store, "training", "20260101-aaaa", 1.0, state="SUCCEEDED")
    started(store, "training", "20260101-abbb", 2.0)
    assert query.get_run(store, "20260101-aaaa").state == "SUCCEEDED"
    assert query.get_run(store, "20260101-ab").run_id == "20260101-abbb"
    assert query.get_run(store, "20260101-ab").state == "UNKNOWN"  # no state recorded yet
    with pytest.raises(KubetfxError, match="matches several runs"):
        query.get_run(store, "20260101-a")
    with pytest.raises(KubetfxError, match="no such run.*kubetfx runs"):
        query.get_run(store, "nothing")


def test_a_runs_tasks_come_in_recorded_order_with_states_and_outputs(store: Store) -> None:
    examples = artifact("examples", "/root/examples", EXAMPLES)
    gen_id, gen_out = task(store, "training", "run-1", "example-gen", outputs={"examples": [examples]})
    consumed = ArtifactRecord("examples", examples.uri, "system.Dataset", id=gen_out["examples"][0])
    stats = artifact("statistics", "/root/statistics", STATISTICS)
    stats_id, stats_out = task(
        store,
        "training",
        "run-1",
        "statistics-gen",
        inputs={"examples": [consumed]},
        outputs={"statistics": [stats]},
    )
    who = Identity("training", "run-1", "trainer")
    failed = record.start_execution(store, who, params={}, inputs={"examples": [consumed]})
    record.fail_execution(store, failed, "out of memory")
    task(store, "training", "run-2", "example-gen")  # another run: not listed

    tasks = query.run_tasks(store, "run-1")
    assert [(t.execution_id, t.task_name, t.state) for t in tasks] == [
        (gen_id, "example-gen", "COMPLETE"),
        (stats_id, "statistics-gen", "COMPLETE"),
        (failed, "trainer", "FAILED"),
    ]
    assert tasks[0].type_name == record.CONTAINER_EXECUTION
    assert tasks[0].outputs == {"examples": [(gen_out["examples"][0], "system.Dataset", "/root/examples")]}
    assert tasks[1].outputs == {"statistics": [(stats_out["statistics"][0], STATISTICS, "/root/statistics")]}
    assert tasks[2].outputs == {} and tasks[2].properties["error"] == "out of memory"
    assert tasks[1].seconds is not None and tasks[1].seconds >= 0
    with pytest.raises(KubetfxError, match="run 'run-9' not found"):
        query.run_tasks(store, "run-9")


def test_statistics_come_from_the_input_uri_of_the_examples_their_producer_read(store: Store) -> None:
    examples = artifact("examples", "/root/a/examples", EXAMPLES, input_uri="gs://bucket/penguins.csv")
    _, gen_out = task(store, "training", "run-1", "example-gen", outputs={"examples": [examples]})
    consumed = ArtifactRecord("examples", examples.uri, "system.Dataset", id=gen_out["examples"][0])
    _, made = task(
        store,
        "training",
        "run-1",
        "statistics-gen",
        inputs={"examples": [consumed]},
        outputs={"statistics": [artifact("statistics", "/root/a/statistics", STATISTICS)]},
    )
    # Statistics nobody produced in this store fall back to their own input_uri, else nothing.
    _, own = task(
        store,
        "training",
        "run-2",
        "imported",
        outputs={
            "with": [artifact("with", "/root/b/statistics", STATISTICS, input_uri="file.csv")],
            "without": [artifact("without", "/root/c/statistics", STATISTICS)],
        },
    )
    artifacts = store.call(
        store.mlmd.get_artifacts_by_id, [made["statistics"][0], own["with"][0], own["without"][0]]
    )
    assert query.statistics_sources(store, artifacts) == {
        made["statistics"][0]: "gs://bucket/penguins.csv",
        own["with"][0]: "file.csv",
    }
    assert query.statistics_sources(store, []) == {}


def test_the_drift_series_holds_the_validations_that_had_a_baseline(store: Store) -> None:
    with pytest.raises(KubetfxError, match="no pipeline 'training'.*pipelines there: none"):
        query.drift_series(store, "training")
    task(store, "training", "run-0", "example-gen")
    assert query.drift_series(store, "training") == []  # no anomalies recorded at all

    drift = {"drift_distances": {"species": 0.25}, "drift_thresholds": {"species": 0.1}}
    _, first = task(
        store,
        "training",
        "run-1",
        "example-validator",
        outputs={"anomalies": [artifact("anomalies", "/root/1/anomalies", ANOMALIES)]},  # no baseline
    )
    _, second = task(
        store,
        "training",
        "run-2",
        "example-validator",
        outputs={
            "anomalies": [
                artifact(
                    "anomalies",
                    "/root/2/anomalies",
                    ANOMALIES,
                    span=2,
                    baseline_span=1,
                    baseline_run="run-1",
                    **drift,
                )
            ]
        },
    )
    [point] = query.drift_series(store, "training")
    assert point.artifact_id == second["anomalies"][0] != first["anomalies"][0]
    assert (point.run_id, point.span, point.baseline_span, point.baseline_run) == ("run-2", 2, 1, "run-1")
    assert point.distances == {"species": 0.25} and point.thresholds == {"species": 0.1}
    with pytest.raises(KubetfxError, match="pipelines there: training"):
        query.drift_series(store, "other")


def test_a_run_listing_reads_run_contexts_only(store: Store) -> None:
    """Executions recorded without a run-level update still make a (stateless) run."""
    task(store, "training", "run-x", "example-gen")
    [run] = query.list_runs(store)
    assert (run.run_id, run.pipeline_name, run.state, run.start_time) == (
        "run-x",
        "training",
        "UNKNOWN",
        None,
    )
