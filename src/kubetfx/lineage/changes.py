"""Has the data changed since the last run that trained on it? (continuous training)

"The last run that trained" is read from executions, not from a run-level state: in a
Kubeflow cluster a run's state lives in the KFP API server and the kubetfx task wrapper
records only executions, so the same definition holds locally and in a cluster.

A run of pipeline P counts when, in P's ``system.Pipeline`` context, it has

1. an execution that produced a ``kubetfx.ModelBlessing`` (the Evaluator) and is COMPLETE
   or CACHED, and that read an Examples artifact as its input ``examples``; and
2. when that blessing says blessed: an execution of the same run that read the blessing
   (the Pusher) and is COMPLETE or CACHED. A run whose push failed, or is still
   pushing, has not finished with its data. (``require_push=False`` drops this
   condition, for pipelines without a Pusher.)

A run that stopped before its Evaluator (failed validation, or skipped because its data
had not changed) does not count: the comparison is always against data that was
trained on and evaluated. "Last" is the newest such Evaluator execution (MLMD ids grow
as records are written; a cached Evaluator is recorded in its own, later run).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ml_metadata import metadata_store as ms
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import BLESSING
from kubetfx.lineage.record import PIPELINE_CONTEXT, props, quoted, truthy
from kubetfx.lineage.store import Store

_PAGE = 100
_DONE = (pb.Execution.COMPLETE, pb.Execution.CACHED)
EXAMPLES_INPUT = "examples"  # the Evaluator's input name for the data it evaluated


@dataclass
class TrainedData:
    """The data the last finished training run of a pipeline used."""

    fingerprint: str  # ExampleGen's content fingerprint of the input files ("" if absent)
    span: int
    run_id: str
    examples_id: int  # the Examples artifact the Evaluator read
    evaluation_execution_id: int
    blessed: bool


def _pages(store: Store, pipeline_name: str) -> Iterator[list[pb.Execution]]:
    """Finished executions of the pipeline, newest first, one page at a time."""
    base = (
        f"contexts_p.type = {quoted(PIPELINE_CONTEXT)} AND contexts_p.name = {quoted(pipeline_name)}"
        " AND (last_known_state = COMPLETE OR last_known_state = CACHED)"
    )
    below = None
    while True:
        query = base + (f" AND id < {below}" if below is not None else "")
        options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False, limit=_PAGE)
        page = list(store.call(store.mlmd.get_executions, list_options=options))
        if not page:
            return
        yield page
        if len(page) < _PAGE:
            return
        below = min(e.id for e in page)


def _push_finished(store: Store, blessing_id: int, run_id: str) -> bool:
    """Whether an execution of ``run_id`` that read the blessing (the Pusher) finished."""
    events = store.call(store.mlmd.get_events_by_artifact_ids, [blessing_id])
    readers = sorted({e.execution_id for e in events if e.type == pb.Event.INPUT})
    if not readers:
        return False
    return any(
        e.last_known_state in _DONE and str(props(e).get("run_id", "")) == run_id
        for e in store.call(store.mlmd.get_executions_by_id, readers)
    )


def last_trained_data(
    store: Store, pipeline_name: str, exclude_run: str = "", *, require_push: bool = True
) -> TrainedData | None:
    """The data of the last run of ``pipeline_name`` that trained and finished (module docstring).

    Args:
        store: An open metadata store (``kubetfx.lineage.store.connect``).
        pipeline_name: The pipeline's name (``kubetfx-continuous-training``).
        exclude_run: A run id to leave out: the running one.
        require_push: Whether a blessed run must also have finished its push to count.

    Returns:
        What that run's Evaluator read, or None when no run counts.
    """
    if store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name) is None:
        return None
    types = {t.name: t.id for t in store.call(store.mlmd.get_artifact_types)}
    if BLESSING not in types:
        return None  # nothing was ever evaluated in this store
    for page in _pages(store, pipeline_name):
        events = store.call(store.mlmd.get_events_by_execution_ids, [e.id for e in page])
        artifact_ids = sorted({e.artifact_id for e in events})
        artifacts = {a.id: a for a in store.call(store.mlmd.get_artifacts_by_id, artifact_ids)}
        for execution in page:  # newest first
            run_id = str(props(execution).get("run_id", ""))
            if exclude_run and run_id == exclude_run:
                continue
            mine = [e for e in events if e.execution_id == execution.id]
            blessings = [
                artifacts[e.artifact_id]
                for e in mine
                if e.type == pb.Event.OUTPUT and artifacts[e.artifact_id].type_id == types[BLESSING]
            ]
            examples = [
                artifacts[e.artifact_id]
                for e in mine
                if e.type == pb.Event.INPUT and e.path.steps and e.path.steps[0].key == EXAMPLES_INPUT
            ]
            if not blessings or not examples:
                continue
            blessed = truthy(props(blessings[0]).get("blessed"))
            if blessed and require_push and not _push_finished(store, blessings[0].id, run_id):
                continue
            data = props(examples[0])
            span = data.get("span", 0)
            return TrainedData(
                fingerprint=str(data.get("fingerprint") or ""),
                span=int(span) if isinstance(span, int | float) else 0,
                run_id=run_id,
                examples_id=examples[0].id,
                evaluation_execution_id=execution.id,
                blessed=blessed,
            )
    return None


def last_trained_fingerprint(
    store: Store, pipeline_name: str, exclude_run: str = ""
) -> tuple[str, str] | None:
    """``(fingerprint, run_id)`` of :func:`last_trained_data`, or None: for notebooks."""
    found = last_trained_data(store, pipeline_name, exclude_run)
    return (found.fingerprint, found.run_id) if found else None
