"""Rollbacks: serve an earlier version again, and say so in lineage.

``kubetfx rollback MODEL --to VERSION`` republishes that version's files as a new, highest
version (servers serve the highest) and records one ``kubetfx.Rollback`` execution: its
INPUT ``model`` is the Model that version was made from, its OUTPUT ``pushed_model`` a new
``kubetfx.PushedModel`` artifact (``rollback=1``, ``rolled_back_to=VERSION``). The model
being served is then, for everyone reading lineage (the Evaluator's baseline included),
the latest push whether a pipeline or a rollback made it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ml_metadata.metadata_store import ListOptions
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import PUSHED_MODEL, TYPE_KEY
from kubetfx.errors import KubetfxError
from kubetfx.lineage.record import (
    PIPELINE_CONTEXT,
    ArtifactRecord,
    _artifact_proto,
    _event,
    props,
    to_value,
)
from kubetfx.lineage.store import Store
from kubetfx.pushing import Published, check_model_name, republish

ROLLBACK_EXECUTION = "kubetfx.Rollback"
MODEL_KEY = "model"
PUSHED_MODEL_KEY = "pushed_model"


class RollbackError(KubetfxError):
    """A rollback cannot be done or recorded."""


@dataclass
class PushRecord:
    """A recorded push of one version: the PushedModel, the execution that made it, its Model."""

    pushed: pb.Artifact
    execution: pb.Execution
    model: pb.Artifact
    pipeline_context: pb.Context | None

    @property
    def version_uri(self) -> str:
        """Where that version was published (the ``destination`` property, else the URI)."""
        return str(props(self.pushed).get("destination") or self.pushed.uri)


@dataclass
class RollbackResult:
    """What a rollback published and recorded."""

    published: Published
    rolled_back_to: int
    execution_id: int
    pushed_model_id: int
    model_id: int


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def pushes(store: Store, model_name: str) -> list[pb.Artifact]:
    """Live PushedModel records of ``model_name`` that published a version, newest first."""
    check_model_name(model_name)  # also keeps the filter query free of quotes
    query = f"type = '{PUSHED_MODEL}' AND custom_properties.model_name.string_value = '{model_name}'"
    found = store.call(store.mlmd.get_artifacts, list_options=ListOptions(filter_query=query))
    live = [a for a in found if a.state == pb.Artifact.LIVE and _as_int(props(a).get("pushed")) == 1]
    return sorted(live, key=lambda a: -a.id)


def find_push(store: Store, model_name: str, version: int) -> PushRecord | None:
    """The newest recorded push of this version, with the Model it was made from; None if none."""
    for artifact in pushes(store, model_name):
        if _as_int(props(artifact).get("version")) != version:
            continue
        events = store.call(store.mlmd.get_events_by_artifact_ids, [artifact.id])
        producers = [e.execution_id for e in events if e.type == pb.Event.OUTPUT]
        if not producers:
            continue
        [execution] = store.call(store.mlmd.get_executions_by_id, [max(producers)])
        inputs = store.call(store.mlmd.get_events_by_execution_ids, [execution.id])
        model_ids = [
            e.artifact_id
            for e in inputs
            if e.type == pb.Event.INPUT and e.path.steps and e.path.steps[0].key == MODEL_KEY
        ]
        if not model_ids:
            continue
        [model] = store.call(store.mlmd.get_artifacts_by_id, [model_ids[0]])
        pipeline_type = store.type_id("context", PIPELINE_CONTEXT)
        contexts = store.call(store.mlmd.get_contexts_by_execution, execution.id)
        pipeline = next((c for c in contexts if c.type_id == pipeline_type), None)
        return PushRecord(pushed=artifact, execution=execution, model=model, pipeline_context=pipeline)
    return None


def _destination_of(version_uri: str) -> str:
    """``<destination>/<model_name>/<version>`` -> ``<destination>``."""
    return version_uri.rstrip("/").rsplit("/", 2)[0]


def record_rollback(
    store: Store, record: PushRecord, published: Published, rolled_back_to: int
) -> tuple[int, int]:
    """Record a rollback in one transaction; returns (execution id, new PushedModel id)."""
    now = time.time()
    execution = pb.Execution(
        type_id=store.type_id("execution", ROLLBACK_EXECUTION), last_known_state=pb.Execution.COMPLETE
    )
    facts = {
        "display_name": "rollback",
        "model_name": published.model_name,
        "rolled_back_to": rolled_back_to,
        "version": published.version,
        "destination": published.uri,
        "pushed_at": published.pushed_at,
        "requested_by": os.environ.get("USER") or os.environ.get("LOGNAME") or "",
        "start_time": now,
        "end_time": now,
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    pushed = _artifact_proto(
        store,
        ArtifactRecord(
            key=PUSHED_MODEL_KEY,
            uri=published.uri,
            schema_title="system.Artifact",
            metadata={
                TYPE_KEY: PUSHED_MODEL,
                "pushed": 1,
                "model_name": published.model_name,
                "version": published.version,
                "destination": published.uri,
                "pushed_at": published.pushed_at,
                "model_uri": record.model.uri,
                "rollback": 1,
                "rolled_back_to": rolled_back_to,
            },
        ),
        pb.Artifact.LIVE,
    )
    model_event = _event(pb.Event.INPUT, MODEL_KEY)
    pushed_event = _event(pb.Event.OUTPUT, PUSHED_MODEL_KEY)
    contexts = [record.pipeline_context] if record.pipeline_context is not None else []
    execution_id, artifact_ids, _ = store.call(
        store.mlmd.put_execution,
        execution,
        [(record.model, model_event), (pushed, pushed_event)],
        contexts,
    )
    return execution_id, artifact_ids[1]


def rollback(
    store: Store,
    model_name: str,
    to_version: int,
    *,
    destination: str | None = None,
    allowed_roots: Sequence[str] | None = None,
) -> RollbackResult:
    """Republish ``to_version`` of ``model_name`` as a new, highest version and record it.

    Args:
        store: The metadata store holding the pushes.
        model_name: The model's name (its folder under the destination).
        to_version: The earlier version to serve again.
        destination: Where the versions are; None: where ``to_version`` was published.
        allowed_roots: None reads kubetfx's settings (``KUBETFX_PUSH_ROOT``).

    Raises:
        RollbackError: No recorded push of that version (lineage is needed to know which
            model is served), or recording failed after publishing.
        PushError: The version's files are not at the destination, or it is not allowed.
    """
    check_model_name(model_name)
    record = find_push(store, model_name, to_version)
    if record is None:
        known = sorted({v for a in pushes(store, model_name) if (v := _as_int(props(a).get("version")))})
        raise RollbackError(
            f"version {to_version} of model {model_name!r} has no push record in lineage ({store}; "
            f"recorded versions: {', '.join(map(str, known)) or 'none'}); rollback only restores "
            "versions the Pusher published and recorded"
        )
    target = destination if destination is not None else _destination_of(record.version_uri)
    published = republish(model_name, to_version, target, allowed_roots=allowed_roots)
    try:
        execution_id, pushed_id = record_rollback(store, record, published, to_version)
    except Exception as err:  # noqa: BLE001 - say what is served before failing
        raise RollbackError(
            f"published version {to_version} of {model_name!r} again as version {published.version} "
            f"({published.uri}), but recording it in lineage ({store}) failed: {err}; the Evaluator's "
            "baseline does not know about it until it is recorded"
        ) from err
    return RollbackResult(
        published=published,
        rolled_back_to=to_version,
        execution_id=execution_id,
        pushed_model_id=pushed_id,
        model_id=record.model.id,
    )
