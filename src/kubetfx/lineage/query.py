"""Reading lineage back: runs and their tasks.

Queries walk from a run context to its executions and their events, never list the
whole store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import KubetfxError
from kubetfx.lineage.record import PIPELINE_CONTEXT, RUN_CONTEXT, STATE_NAMES, props
from kubetfx.lineage.store import Store


@dataclass
class RunInfo:
    """A run as recorded in its ``system.PipelineRun`` context."""

    run_id: str
    pipeline_name: str
    state: str
    start_time: float | None
    seconds: float | None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskInfo:
    """One execution of a run, with its output artifacts."""

    execution_id: int
    task_name: str
    type_name: str
    state: str
    seconds: float | None
    properties: dict[str, Any]
    outputs: dict[str, list[tuple[int, str, str]]]  # key -> [(artifact id, type, uri)]


def _run_info(context: pb.Context) -> RunInfo:
    p = props(context)
    return RunInfo(
        run_id=context.name,
        pipeline_name=str(p.get("pipeline_name", "")),
        state=str(p.get("state", "UNKNOWN")),
        start_time=p.get("start_time"),
        seconds=p.get("seconds"),
        properties=p,
    )


def list_runs(store: Store, pipeline: str | None = None, limit: int = 20) -> list[RunInfo]:
    """The newest runs first, optionally of one pipeline."""
    if pipeline:
        ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline)
        if ctx is None:
            return []
        # Runs of a pipeline are found through its executions' run contexts.
        contexts = [
            c
            for c in store.call(store.mlmd.get_contexts_by_type, RUN_CONTEXT)
            if props(c).get("pipeline_name") == pipeline
        ]
    else:
        contexts = store.call(store.mlmd.get_contexts_by_type, RUN_CONTEXT)
    runs = sorted((_run_info(c) for c in contexts), key=lambda r: -(r.start_time or 0))
    return runs[:limit]


def get_run(store: Store, run_id: str) -> RunInfo:
    """One run by id (a unique prefix is enough)."""
    ctx = store.call(store.mlmd.get_context_by_type_and_name, RUN_CONTEXT, run_id)
    if ctx is None:
        matches = [
            c for c in store.call(store.mlmd.get_contexts_by_type, RUN_CONTEXT) if c.name.startswith(run_id)
        ]
        if len(matches) != 1:
            hint = "it matches several runs" if matches else "no such run"
            raise KubetfxError(f"run {run_id!r} not found in {store} ({hint}); list runs with `kubetfx runs`")
        ctx = matches[0]
    return _run_info(ctx)


def run_tasks(store: Store, run_id: str) -> list[TaskInfo]:
    """Executions of a run in the order they were recorded, with their outputs."""
    ctx = store.call(store.mlmd.get_context_by_type_and_name, RUN_CONTEXT, run_id)
    if ctx is None:
        raise KubetfxError(f"run {run_id!r} not found in {store}; list runs with `kubetfx runs`")
    executions = store.call(store.mlmd.get_executions_by_context, ctx.id)
    types = {t.id: t.name for t in store.call(store.mlmd.get_execution_types)}
    events = store.call(store.mlmd.get_events_by_execution_ids, [e.id for e in executions])
    out_events = [e for e in events if e.type == pb.Event.OUTPUT]
    artifacts = {
        a.id: a for a in store.call(store.mlmd.get_artifacts_by_id, [e.artifact_id for e in out_events])
    }
    artifact_types = {t.id: t.name for t in store.call(store.mlmd.get_artifact_types)}
    tasks = []
    for execution in sorted(executions, key=lambda e: e.id):
        p = props(execution)
        outputs: dict[str, list[tuple[int, str, str]]] = {}
        for event in out_events:
            if event.execution_id == execution.id:
                artifact = artifacts[event.artifact_id]
                outputs.setdefault(event.path.steps[0].key, []).append(
                    (artifact.id, artifact_types.get(artifact.type_id, "?"), artifact.uri)
                )
        tasks.append(
            TaskInfo(
                execution_id=execution.id,
                task_name=str(p.get("task_name", "")),
                type_name=types.get(execution.type_id, "?"),
                state=STATE_NAMES.get(execution.last_known_state, "UNKNOWN"),
                seconds=p.get("wall_seconds"),
                properties=p,
                outputs=outputs,
            )
        )
    return tasks


def _span(artifact: pb.Artifact) -> int:
    value = props(artifact).get("span", 0)
    return int(value) if isinstance(value, int | float) else 0


def previous_statistics(store: Store, pipeline_name: str, current_uri: str) -> tuple[str, int] | None:
    """The statistics to measure drift against: of the same pipeline, recorded earlier.

    The newest statistics of an earlier span if there is one; otherwise the newest earlier
    statistics of the same span computed from different data (a re-delivered span, or a
    pipeline without spans whose input changed). Returns (URI, span) or None.
    """
    from kubetfx.lineage.record import find_artifact
    from kubetfx.types import STATISTICS

    ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
    current = find_artifact(store, current_uri)
    if ctx is None or current is None:
        return None
    try:
        type_id = store.type_id("artifact", STATISTICS)
    except Exception:  # noqa: BLE001 - no statistics type yet means no baseline
        return None
    span = _span(current)
    fingerprint = props(current).get("examples_fingerprint")
    earlier = [
        a
        for a in store.call(store.mlmd.get_artifacts_by_context, ctx.id)
        if a.type_id == type_id and a.id < current.id and a.state == pb.Artifact.LIVE and a.uri != current_uri
    ]
    older_spans = [a for a in earlier if _span(a) < span]
    if older_spans:
        chosen = max(older_spans, key=lambda a: (_span(a), a.id))
    else:
        same_span = [
            a for a in earlier if _span(a) == span and props(a).get("examples_fingerprint") != fingerprint
        ]
        if not same_span:
            return None
        chosen = max(same_span, key=lambda a: a.id)
    from kubetfx import storage

    if not storage.exists(chosen.uri):
        return None
    return chosen.uri, _span(chosen)


@dataclass
class DriftPoint:
    """One validation run's distances."""

    artifact_id: int
    time: float
    span: int
    baseline_span: int
    distances: dict[str, float]
    thresholds: dict[str, float]
    run_id: str


def drift_series(store: Store, pipeline_name: str) -> list[DriftPoint]:
    """Every ExampleValidator result of a pipeline that had a baseline, oldest first."""
    from kubetfx.types import ANOMALIES

    ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
    if ctx is None:
        raise KubetfxError(
            f"no pipeline {pipeline_name!r} in {store}; pipelines there: "
            + (
                ", ".join(
                    sorted(c.name for c in store.call(store.mlmd.get_contexts_by_type, PIPELINE_CONTEXT))
                )
                or "none"
            )
        )
    types = {t.name: t.id for t in store.call(store.mlmd.get_artifact_types)}
    if ANOMALIES not in types:
        return []
    points = []
    for artifact in store.call(store.mlmd.get_artifacts_by_context, ctx.id):
        if artifact.type_id != types[ANOMALIES]:
            continue
        p = props(artifact)
        if not p.get("drift_distances"):
            continue
        events = store.call(store.mlmd.get_events_by_artifact_ids, [artifact.id])
        producer = [e.execution_id for e in events if e.type == pb.Event.OUTPUT]
        run_id = ""
        if producer:
            [execution] = store.call(store.mlmd.get_executions_by_id, producer[:1])
            run_id = str(props(execution).get("run_id", ""))
        points.append(
            DriftPoint(
                artifact_id=artifact.id,
                time=artifact.create_time_since_epoch / 1000,
                span=int(p.get("span", 0)),
                baseline_span=int(p.get("baseline_span", -1)),
                distances={k: float(v) for k, v in p["drift_distances"].items()},
                thresholds={k: float(v) for k, v in (p.get("drift_thresholds") or {}).items()},
                run_id=run_id,
            )
        )
    return sorted(points, key=lambda d: d.artifact_id)
