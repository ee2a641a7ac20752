"""What the operator's lineage commands show, computed from lineage; formatting is the CLI's.

- :func:`drift_table`: each feature's drift distance across a pipeline's recent runs, with
  its threshold, and the validations that failed in that window (``kubetfx drift``).
- :func:`dataset_impact`: what was made from a dataset: the graphs downstream of it, the
  models trained on it and where they were pushed (``kubetfx lineage dataset``).
- :func:`push_history`: every push and rollback, newest first (``kubetfx lineage pushes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubetfx.lineage.query import DriftPoint, drift_series

if TYPE_CHECKING:
    from kubetfx.lineage.graph import Graph, MLMDLineage, Node
    from kubetfx.lineage.store import Store


@dataclass
class FailedValidation:
    """An ExampleValidator execution that failed. One that failed on its findings published
    them (distances included: it is a point of the drift series too); one that failed
    before measuring (bad input, a crash) left no point."""

    execution_id: int
    run_id: str
    time: float


@dataclass
class DriftRow:
    """One feature's line in the drift table: the newest threshold, and one cell per point."""

    feature: str
    threshold: float | None
    distances: list[float | None]  # one per shown point; None: not measured in that run

    def over(self, index: int) -> bool:
        """Whether the distance at ``index`` is over the threshold."""
        value = self.distances[index]
        return value is not None and self.threshold is not None and value > self.threshold


@dataclass
class DriftTable:
    """The last runs' drift of a pipeline, feature by feature."""

    points: list[DriftPoint]  # shown, oldest first
    rows: list[DriftRow]
    failed: list[FailedValidation]  # failed validations in the window with no point, oldest first
    failed_points: set[int] = field(default_factory=set)  # indexes of points whose validation failed

    @property
    def empty(self) -> bool:
        """Nothing measured and nothing failed: the pipeline has no drift to show yet."""
        return not self.points and not self.failed


def drift_table(store: Store, pipeline_name: str, last: int) -> DriftTable:
    """The drift of ``pipeline_name``'s last ``last`` measurements, and the validations that
    failed since the first of them (the last ``last`` failures when nothing was measured)."""
    points = drift_series(store, pipeline_name)
    failed = failed_validations(store, pipeline_name)
    shown = points[-last:]
    since = shown[0].time if shown else 0.0
    in_window = [f for f in failed if f.time >= since] if shown else failed[-last:]
    # A validation that failed on what it found still published its distances: it is a
    # point (marked as failed), not a failure with "no distances".
    measured = {p.run_id for p in shown if p.run_id}
    shown_failed = [f for f in in_window if f.run_id not in measured]
    failed_runs = {f.run_id for f in in_window if f.run_id in measured}
    failed_points = {i for i, p in enumerate(shown) if p.run_id in failed_runs}
    rows = []
    for feature in sorted({f for p in shown for f in p.distances}):
        threshold = next((p.thresholds[feature] for p in reversed(shown) if feature in p.thresholds), None)
        rows.append(DriftRow(feature, threshold, [p.distances.get(feature) for p in shown]))
    return DriftTable(points=shown, rows=rows, failed=shown_failed, failed_points=failed_points)


def failed_validations(store: Store, pipeline_name: str) -> list[FailedValidation]:
    """ExampleValidator executions of the pipeline that failed, oldest first."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage.record import PIPELINE_CONTEXT, props

    ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
    if ctx is None:
        return []
    found = []
    for execution in store.call(store.mlmd.get_executions_by_context, ctx.id):
        p = props(execution)
        if execution.last_known_state == pb.Execution.FAILED and str(p.get("task_name", "")).endswith(
            "example-validator"
        ):
            found.append(
                FailedValidation(
                    execution_id=execution.id,
                    run_id=str(p.get("run_id", "")),
                    time=float(p.get("end_time") or execution.create_time_since_epoch / 1000),
                )
            )
    return sorted(found, key=lambda f: (f.time, f.execution_id))


@dataclass
class Push:
    """A recorded push or rollback."""

    model: str  # MODEL_NAME:VERSION
    pushed_at: Any
    rollback: bool  # a rollback serving an earlier version again, not a push of a new model
    rolled_back_to: Any  # the version a rollback served again
    destination: str
    artifact_id: int


@dataclass
class DatasetImpact:
    """Everything downstream of a dataset."""

    roots: list[Node]  # the Examples artifacts followed
    graphs: list[Graph]  # one per root, in the same order
    models: dict[int, str] = field(default_factory=dict)  # model artifact id -> URI
    pushes: list[Push] = field(default_factory=list)


def dataset_impact(source: MLMDLineage, ref: str) -> DatasetImpact:
    """What was made from the data ``ref`` names (an Examples id or URI, a source URI, or
    ``span=N``). A data source or a span may have been read by many runs: every Examples
    artifact made from it is followed (an artifact id or URI names exactly one)."""
    roots = [] if ref.isdigit() else source.examples_from(ref)
    roots = roots or [source.resolve(ref)]
    impact = DatasetImpact(roots=roots, graphs=[])
    for root in roots:
        graph = source.walk(str(root.id), "down")
        impact.graphs.append(graph)
        for node in graph.nodes.values():
            if node.kind == "artifact" and node.type == "system.Model":
                impact.models[node.id] = node.label
            if node.kind == "artifact" and node.properties.get("pushed") in (1, True):
                impact.pushes.append(_push(node))
    return impact


def push_history(source: MLMDLineage, model_name: str = "") -> list[Push]:
    """Every push and rollback (only ``model_name``'s if given), newest first."""
    return [_push(node) for node in source.pushes(model_name)]


def _push(node: Node) -> Push:
    p = node.properties
    return Push(
        model=f"{p.get('model_name')}:{p.get('version')}",
        pushed_at=p.get("pushed_at", ""),
        rollback=bool(p.get("rollback")),
        rolled_back_to=p.get("rolled_back_to"),
        destination=str(p.get("destination", "")),
        artifact_id=node.id,
    )
