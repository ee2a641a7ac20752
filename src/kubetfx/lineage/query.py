"""Reading lineage back: runs and their tasks.

Queries walk from a run context to its executions and their events, never list the
whole store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import KubetfxError
from kubetfx.lineage.record import PIPELINE_CONTEXT, RUN_CONTEXT, STATE_NAMES, props, quoted, truthy
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


@dataclass
class StatisticsBaseline:
    """The statistics a drift check compares with, and where they came from."""

    uri: str
    span: int
    run_id: str  # the earlier run that used these statistics
    source: str  # the data source both were computed from (ExampleGen's input URI)
    artifact_id: int
    same_statistics: bool = False  # that run used the very statistics being checked

    def describe(self) -> str:
        """One line for messages and reports: which run, source and span."""
        from kubetfx.settings import redact

        text = f"statistics of run {self.run_id} (source {redact(self.source)}, span {self.span})"
        return text + (", the same statistics as now" if self.same_statistics else "")


def statistics_sources(store: Store, artifacts: list[pb.Artifact]) -> dict[int, str]:
    """The data source of each statistics artifact: the ``input_uri`` of the Examples its
    StatisticsGen read (the Examples' URI when they did not come from ExampleGen).

    Walks events from the artifacts: producer executions, then their ``examples`` input.
    """
    ids = [a.id for a in artifacts]
    if not ids:
        return {}
    events = store.call(store.mlmd.get_events_by_artifact_ids, ids)
    producers: dict[int, set[int]] = {}
    for event in events:
        if event.type == pb.Event.OUTPUT:
            producers.setdefault(event.artifact_id, set()).add(event.execution_id)
    execution_ids = sorted({e for found in producers.values() for e in found})
    examples_of: dict[int, int] = {}
    if execution_ids:
        for event in store.call(store.mlmd.get_events_by_execution_ids, execution_ids):
            if event.type == pb.Event.INPUT and event.path.steps and event.path.steps[0].key == "examples":
                examples_of[event.execution_id] = event.artifact_id
    examples_ids = sorted(set(examples_of.values()))
    examples = (
        {a.id: a for a in store.call(store.mlmd.get_artifacts_by_id, examples_ids)} if examples_ids else {}
    )
    sources: dict[int, str] = {}
    for artifact in artifacts:
        for execution_id in sorted(producers.get(artifact.id, ())):
            found = examples.get(examples_of.get(execution_id, -1))
            if found is not None:
                sources[artifact.id] = str(props(found).get("input_uri") or found.uri)
                break
        else:
            own = props(artifact).get("input_uri")
            if own:
                sources[artifact.id] = str(own)
    return sources


def previous_statistics(
    store: Store, pipeline_name: str, current_uri: str, run_id: str = ""
) -> StatisticsBaseline | None:
    """The statistics to measure drift against, or None when there are none.

    Only statistics of the same data source (ExampleGen's input URI) within the pipeline
    ``pipeline_name`` count, never another source's. "Previous" is about runs, not
    artifact ids: the statistics the previous run of that source used, whether it
    computed them or reused them from a cache. An earlier span wins over the same span
    (the newest earlier span; within it the latest run); without an earlier span, the
    latest earlier run of the same span. Statistics whose files are not all in the store
    (an upload that never finished) are passed over for the next best. ``run_id`` is the
    running run (runs that began after it are never a baseline); without it, the latest
    run that used the current statistics is taken as the running one.
    """
    from kubetfx.artifacts.kinds import STATISTICS
    from kubetfx.lineage.record import content_complete, find_artifact

    ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
    current = find_artifact(store, current_uri)
    if ctx is None or current is None:
        return None
    from ml_metadata import metadata_store as ms

    # Only this pipeline's statistics, filtered by the store (not every artifact of the pipeline).
    query = (
        f"type = '{STATISTICS}' AND contexts_p.type = '{PIPELINE_CONTEXT}'"
        f" AND contexts_p.name = {quoted(pipeline_name)}"
    )
    candidates = [
        a
        for a in store.call(store.mlmd.get_artifacts, list_options=ms.ListOptions(filter_query=query))
        if a.state == pb.Artifact.LIVE
    ]
    if all(a.id != current.id for a in candidates):
        candidates.append(current)
    sources = statistics_sources(store, candidates)
    source = sources.get(current.id)
    if not source:
        return None
    same_source = {a.id: a for a in candidates if sources.get(a.id) == source}
    # Which runs used which of these statistics: every execution with an event on them
    # (StatisticsGen's output, a cached StatisticsGen's reuse, the validator's input).
    events = store.call(store.mlmd.get_events_by_artifact_ids, sorted(same_source))
    execution_ids = sorted({e.execution_id for e in events})
    executions = {e.id: e for e in store.call(store.mlmd.get_executions_by_id, execution_ids)}
    first_execution: dict[str, int] = {}  # run -> its first execution touching them (run order)
    used: dict[str, set[int]] = {}
    for event in events:
        execution = executions.get(event.execution_id)
        if execution is None:
            continue
        p = props(execution)
        if p.get("pipeline_name") not in (None, "", pipeline_name):
            continue
        run = str(p.get("run_id", ""))
        if not run:
            continue
        first_execution[run] = min(first_execution.get(run, execution.id), execution.id)
        used.setdefault(run, set()).add(event.artifact_id)
    if not run_id:
        users = [r for r, ids in used.items() if current.id in ids]
        run_id = max(users, key=lambda r: first_execution[r]) if users else ""
    position = first_execution.get(run_id, float("inf"))
    span = _span(current)
    # (span, run order, artifact) of every earlier run of this source, one statistics each.
    earlier = []
    for run, ids in used.items():
        if run == run_id or first_execution[run] >= position:
            continue
        chosen = max(ids)  # one run, one source: normally one statistics artifact
        earlier.append((_span(same_source[chosen]), first_execution[run], run, same_source[chosen]))
    older = sorted((e for e in earlier if e[0] < span), key=lambda e: (e[0], e[1]), reverse=True)
    same = sorted((e for e in earlier if e[0] == span), key=lambda e: (e[0], e[1]), reverse=True)
    # The best candidate whose files are all in the store: a run whose task was recorded
    # but whose upload never finished (a pod that died after its command) is passed over.
    complete = (e for e in older + same if e[3].id == current.id or content_complete(e[3]))
    best = next(complete, None)
    if best is None:
        return None
    best_span, _, run, artifact = best
    return StatisticsBaseline(
        uri=artifact.uri,
        span=best_span,
        run_id=run,
        source=source,
        artifact_id=artifact.id,
        same_statistics=artifact.id == current.id,
    )


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
    baseline_run: str = ""  # the earlier run whose statistics were the baseline


def drift_series(store: Store, pipeline_name: str) -> list[DriftPoint]:
    """Every ExampleValidator result of a pipeline that had a baseline, oldest first."""
    from kubetfx.artifacts.kinds import ANOMALIES

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
                baseline_run=str(p.get("baseline_run", "")),
            )
        )
    return sorted(points, key=lambda d: d.artifact_id)


def unblessed_runs(store: Store, pipeline_name: str, model_name: str, limit: int = 100) -> int:
    """How many of the newest evaluations of ``model_name`` in ``pipeline_name`` in a row did
    not bless their candidate (0 when the newest did, or there is none); at most ``limit``.

    Counts ModelBlessing artifacts, newest first: a cached Evaluator reuses its blessing,
    so a rerun on the same model is not counted twice.
    """
    from ml_metadata import metadata_store as ms

    from kubetfx.artifacts.kinds import BLESSING

    query = (
        f"type = {quoted(BLESSING)} AND custom_properties.model_name.string_value = {quoted(model_name)}"
        f" AND contexts_p.type = {quoted(PIPELINE_CONTEXT)} AND contexts_p.name = {quoted(pipeline_name)}"
    )
    options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False, limit=limit)
    streak = 0
    for blessing in store.call(store.mlmd.get_artifacts, list_options=options):
        if truthy(props(blessing).get("blessed")):
            break
        streak += 1
    return streak
