"""What the model being served was trained and evaluated on, found through lineage.

Serving drift compares serving traffic with the data of the model that answers it, so it
needs, for a model name:

* the served model (:func:`kubetfx.lineage.baseline.served_model`: the newest push,
  rollbacks included);
* the Trainer execution that wrote it, and that execution's inputs ``examples``,
  ``schema`` and ``statistics`` (the statistics computed from those examples; when the
  Trainer took none, the newest ExampleStatistics an execution computed from them);
* the Evaluator execution that blessed it (an input ``model``, an output blessing with
  ``blessed == 1``), its evaluation and the confusion matrix it logged as
  ``system.ClassificationMetrics``: the column sums are the distribution of the model's
  predictions on the evaluation split, what serving predictions are compared with.

Read only: nothing here writes lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import BLESSING, EVALUATION, STATISTICS
from kubetfx.lineage.baseline import served_model
from kubetfx.lineage.record import props, truthy
from kubetfx.lineage.store import Store

CLASSIFICATION_METRICS = "system.ClassificationMetrics"


@dataclass
class ServedTraining:
    """The served model and what it was trained and evaluated on (URIs; "" when unknown)."""

    model_name: str
    model_id: int
    model_uri: str
    served: str  # how it was found: "served: version 3 at ... (push)"
    examples_uri: str = ""
    schema_uri: str = ""
    statistics_uri: str = ""
    evaluation_uri: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)
    # Predicted classes on the evaluation split: {class: count}, from the confusion matrix.
    predicted: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for messages and reports."""
        return f"model {self.model_name} ({self.served}), trained on statistics {self.statistics_uri or '?'}"


def _events(store: Store, execution_ids: list[int]) -> list[pb.Event]:
    return list(store.call(store.mlmd.get_events_by_execution_ids, execution_ids)) if execution_ids else []


def _artifacts(store: Store, ids: list[int]) -> dict[int, pb.Artifact]:
    found = store.call(store.mlmd.get_artifacts_by_id, ids) if ids else []
    return {a.id: a for a in found}


def _type_name(store: Store, artifact: pb.Artifact) -> str:
    [kind] = store.call(store.mlmd.get_artifact_types_by_id, [artifact.type_id])
    return str(kind.name)


def _key(event: pb.Event) -> str:
    return event.path.steps[0].key if event.path.steps else ""


def _io(store: Store, execution_id: int) -> tuple[dict[str, pb.Artifact], dict[str, pb.Artifact]]:
    """An execution's inputs and outputs by key (the last of each key)."""
    events = _events(store, [execution_id])
    by_id = _artifacts(store, sorted({e.artifact_id for e in events}))
    inputs: dict[str, pb.Artifact] = {}
    outputs: dict[str, pb.Artifact] = {}
    for event in events:
        artifact = by_id.get(event.artifact_id)
        if artifact is None:
            continue
        if event.type == pb.Event.INPUT:
            inputs[_key(event)] = artifact
        elif event.type in (pb.Event.OUTPUT, pb.Event.DECLARED_OUTPUT):
            outputs[_key(event)] = artifact
    return inputs, outputs


def _executions_with(store: Store, artifact_id: int, kind: int) -> list[int]:
    """Executions with an event of ``kind`` on the artifact, newest first."""
    events = store.call(store.mlmd.get_events_by_artifact_ids, [artifact_id])
    return sorted({e.execution_id for e in events if e.type == kind}, reverse=True)


def _statistics_of(store: Store, examples_id: int) -> pb.Artifact | None:
    """The newest ExampleStatistics an execution computed from the examples."""
    for execution_id in _executions_with(store, examples_id, pb.Event.INPUT):
        _, outputs = _io(store, execution_id)
        for artifact in outputs.values():
            if _type_name(store, artifact) == STATISTICS and artifact.state == pb.Artifact.LIVE:
                return artifact
    return None


def _blessed(artifact: pb.Artifact) -> bool:
    return truthy(props(artifact).get("blessed"))


def predicted_distribution(confusion: Any) -> dict[str, float]:
    """Predicted-class counts from a KFP ``confusionMatrix`` (rows: actual, columns:
    predicted): the column sums, by class name."""
    if not isinstance(confusion, dict):
        return {}
    names = [str(spec.get("displayName", "")) for spec in confusion.get("annotationSpecs") or []]
    rows = [row.get("row") or [] for row in confusion.get("rows") or []]
    counts = dict.fromkeys(names, 0.0)
    for row in rows:
        for name, value in zip(names, row, strict=False):
            counts[name] += float(value)
    return counts if any(counts.values()) else {}


def served_training(store: Store, model_name: str) -> ServedTraining | None:
    """The model served under ``model_name`` and its training data, schema, statistics and
    evaluation (see the module docstring); None when nothing is served under that name."""
    served = served_model(store, model_name)
    if served is None:
        return None
    found = ServedTraining(model_name, served.model_id, served.model_uri, served.detail)
    for execution_id in _executions_with(store, served.model_id, pb.Event.OUTPUT):
        inputs, _ = _io(store, execution_id)
        if "examples" not in inputs:
            continue
        found.examples_uri = inputs["examples"].uri
        found.schema_uri = inputs["schema"].uri if "schema" in inputs else ""
        statistics = inputs.get("statistics") or _statistics_of(store, inputs["examples"].id)
        found.statistics_uri = statistics.uri if statistics is not None else ""
        break
    for execution_id in _executions_with(store, served.model_id, pb.Event.INPUT):
        inputs, outputs = _io(store, execution_id)
        if inputs.get("model") is None or inputs["model"].id != served.model_id:
            continue
        blessings = [a for a in outputs.values() if _type_name(store, a) == BLESSING]
        if not blessings or not _blessed(blessings[0]):
            continue
        for artifact in outputs.values():
            kind = _type_name(store, artifact)
            if kind == EVALUATION:
                found.evaluation_uri = artifact.uri
                found.evaluation = props(artifact)
            elif kind == CLASSIFICATION_METRICS:
                found.predicted = predicted_distribution(props(artifact).get("confusionMatrix"))
        break
    return found
