"""Writing lineage: one execution per task, in the KFP backend's layout.

The task wrapper (``kubetfx.task``) calls :func:`start_execution` before the executor
and :func:`finish_execution` after it, in the container as well as locally. The local
runner adds what only it knows: runs, cached and skipped tasks.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.store import Store

PIPELINE_CONTEXT = "system.Pipeline"
RUN_CONTEXT = "system.PipelineRun"
CONTAINER_EXECUTION = "system.ContainerExecution"
IMPORTER_EXECUTION = "system.ImporterExecution"
FINGERPRINT_KEY = "kubetfx_fingerprint"
# The output KFP's driver adds to every task when it publishes pod logs; the launcher
# uploads and records it after the command, so a task never records it as its own.
EXECUTOR_LOGS = "executor-logs"
# What a task wrote into each output, recorded with the artifact: in a KFP pod the task
# records its outputs before the launcher uploads them, so a reader checks these against
# the store before it trusts the artifact (see content_complete).
CONTENT_FILES = "content_files"
CONTENT_BYTES = "content_bytes"

STATE_NAMES = {v: k for k, v in pb.Execution.State.items()}


@dataclass
class Identity:
    """Who a task is: its pipeline, run and task name (from KFP placeholders or the runner)."""

    pipeline_name: str
    run_id: str
    task_name: str
    pipeline_root: str = ""


@dataclass
class ArtifactRecord:
    """An artifact as KFP's executor input and output describe it."""

    key: str
    uri: str
    schema_title: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @classmethod
    def from_runtime(cls, key: str, runtime: Mapping[str, Any]) -> ArtifactRecord:
        """From a RuntimeArtifact in executor-input JSON form."""
        return cls(
            key=key,
            uri=runtime.get("uri", ""),
            schema_title=runtime.get("type", {}).get("schemaTitle", "system.Artifact"),
            metadata=dict(runtime.get("metadata") or {}),
        )


def non_finite_name(number: float) -> str:
    """``NaN``, ``Infinity`` or ``-Infinity``: the names JSON parsers that accept them use."""
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def finite(value: Any, found: list[str] | None = None, path: str = "") -> Any:
    """``value`` with every NaN or infinity replaced by its name as a string.

    Neither the KFP launcher (protojson refuses NaN in a ``google.protobuf.Value``) nor ML
    Metadata's SQL stores (``no such column: nan``) can hold them, and a diverged
    training's loss is exactly that. The paths of replaced values are appended to
    ``found``, so the caller can say which numbers were not numbers.
    """
    if isinstance(value, float) and not math.isfinite(value):
        if found is not None:
            found.append(path or "value")
        return non_finite_name(value)
    if isinstance(value, Mapping):
        return {k: finite(v, found, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v, found, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def to_value(value: Any, target: pb.Value) -> None:
    """Store a Python value in an MLMD ``Value`` (structs for lists and dicts); NaN and
    infinities are stored as their names (see :func:`finite`)."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        if math.isfinite(value):
            target.double_value = value
        else:
            target.string_value = non_finite_name(value)
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        target.struct_value.SetInParent()  # an empty dict is still a struct, never an unset Value
        target.struct_value.update(json.loads(json.dumps(finite(value), default=str, allow_nan=False)))
    else:
        target.string_value = json.dumps(finite(value), default=str, allow_nan=False)


def from_value(value: pb.Value) -> Any:
    """Read a Python value back from an MLMD ``Value``."""
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


def props(message: Any) -> dict[str, Any]:
    """Custom properties of an artifact, execution or context as a plain dict."""
    return {k: from_value(v) for k, v in message.custom_properties.items()}


def truthy(value: object) -> bool:
    """A recorded flag (``blessed``, ``pushed``...) as written by any kubetfx version: an
    int, a float, a bool or a string."""
    return value in (1, 1.0, True, "1", "true", "True")


def from_json_text(value: Any) -> Any:
    """A list or struct kept in lineage as JSON text, read back; any other value as it is."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def quoted(text: str) -> str:
    """``text`` as a string literal of an ML Metadata filter query."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def contexts_for(store: Store, identity: Identity) -> list[pb.Context]:
    """The pipeline and run contexts of a task (created if missing, by whoever is first).

    Every lineage write passes here: it is where a write into KFP's own store is refused.
    """
    store.ensure_own()
    pipeline = pb.Context(type_id=store.type_id("context", PIPELINE_CONTEXT), name=identity.pipeline_name)
    run = pb.Context(type_id=store.type_id("context", RUN_CONTEXT), name=identity.run_id)
    to_value(identity.pipeline_name, run.custom_properties["pipeline_name"])
    if identity.pipeline_root:
        to_value(identity.pipeline_root, run.custom_properties["pipeline_root"])
    return [pipeline, run]


def _artifact_proto(store: Store, record: ArtifactRecord, state: int) -> pb.Artifact:
    # kubetfx artifacts travel as system.Artifact in KFP (see kubetfx.artifacts.kinds) but are typed
    # by their kind in lineage, so queries can tell statistics from schemas.
    type_name = record.schema_title
    if type_name == "system.Artifact" and record.metadata.get("kubetfx_type"):
        type_name = str(record.metadata["kubetfx_type"])
    artifact = pb.Artifact(type_id=store.type_id("artifact", type_name), uri=record.uri, state=state)
    if record.id is not None:
        artifact.id = record.id
    to_value(record.key, artifact.custom_properties["display_name"])
    for name, value in record.metadata.items():
        to_value(value, artifact.custom_properties[name])
    return artifact


def written_content(uri: str) -> tuple[int, int] | None:
    """(files, bytes) a task wrote for the output ``uri``, counted where it wrote them.

    For an object-store URI that is the launcher's local path (``/minio/...``), before the
    launcher uploads it; for a local URI, the folder itself. None when neither is there
    (a local output still staged under another name, or a URI with no local copy).
    """
    from kubetfx import storage

    local = storage.launcher_path(uri) if storage.is_remote(uri) else uri
    if not local or not os.path.exists(local):
        return None
    listing = storage.files(local)
    return len(listing), sum(listing.values())


def content_complete(artifact: pb.Artifact) -> bool:
    """Whether everything the producing task wrote for ``artifact`` is at its URI.

    False when fewer files or bytes are there than the task recorded (a launcher that
    died or failed while uploading, an object deleted since) or the store cannot be read.
    An artifact recorded without counts (written before they were recorded, or whose
    content had no local copy) is trusted as before.
    """
    from kubetfx import storage

    info = props(artifact)
    want_files, want_bytes = info.get(CONTENT_FILES), info.get(CONTENT_BYTES)
    if not isinstance(want_files, int | float) or not isinstance(want_bytes, int | float):
        return True
    try:
        listing = storage.files(artifact.uri)
    except storage.StorageError:
        return False
    return len(listing) >= want_files and sum(listing.values()) >= want_bytes


def _event(kind: int, key: str, index: int | None = None) -> pb.Event:
    """An INPUT or OUTPUT event whose path is the input/output name (and list index)."""
    event = pb.Event(type=kind)
    event.path.steps.add().key = key
    if index is not None:
        event.path.steps.add().index = index
    return event


def add_input_event(store: Store, execution_id: int, artifact_id: int, key: str) -> bool:
    """Add an INPUT event from an existing artifact to an existing execution.

    ML Metadata keeps one event per (artifact, execution, type): when the artifact is
    already an input (a baseline that is the candidate model itself), nothing is added
    and False is returned.
    """
    existing = store.call(store.mlmd.get_events_by_execution_ids, [execution_id])
    if any(e.artifact_id == artifact_id and e.type == pb.Event.INPUT for e in existing):
        return False
    event = _event(pb.Event.INPUT, key)
    event.artifact_id = artifact_id
    event.execution_id = execution_id
    store.call(store.mlmd.put_events, [event])
    return True


def find_artifact(store: Store, uri: str) -> pb.Artifact | None:
    """The newest live artifact at ``uri``, if any (URI is the join key across stores)."""
    found = [a for a in store.call(store.mlmd.get_artifacts_by_uri, uri) if a.state == pb.Artifact.LIVE]
    return max(found, key=lambda a: a.id) if found else None


def _input_pairs(
    store: Store, inputs: Mapping[str, list[ArtifactRecord]]
) -> list[tuple[pb.Artifact, pb.Event]]:
    pairs = []
    for key, records in inputs.items():
        for index, record in enumerate(records):
            artifact = None
            if record.id is not None:
                got = store.call(store.mlmd.get_artifacts_by_id, [record.id])
                artifact = got[0] if got else None
            artifact = artifact or find_artifact(store, record.uri)
            if artifact is None:
                # Produced outside kubetfx (an importer in a cluster, a third-party task):
                # register it so the lineage still reaches it.
                artifact = _artifact_proto(store, record, pb.Artifact.LIVE)
            pairs.append((artifact, _event(pb.Event.INPUT, key, index if len(records) > 1 else None)))
    return pairs


def new_execution(
    store: Store,
    identity: Identity,
    *,
    state: int,
    params: Mapping[str, Any],
    type_name: str = CONTAINER_EXECUTION,
    extra: Mapping[str, Any] | None = None,
) -> pb.Execution:
    """An execution proto with KFP's custom properties filled in."""
    execution = pb.Execution(type_id=store.type_id("execution", type_name), last_known_state=state)
    to_value(identity.task_name, execution.custom_properties["display_name"])
    to_value(identity.task_name, execution.custom_properties["task_name"])
    to_value(identity.run_id, execution.custom_properties["run_id"])
    to_value(identity.pipeline_name, execution.custom_properties["pipeline_name"])
    to_value(dict(params), execution.custom_properties["inputs"])
    to_value(time.time(), execution.custom_properties["start_time"])
    for name, value in (extra or {}).items():
        if value is not None:
            to_value(value, execution.custom_properties[name])
    return execution


def start_execution(
    store: Store,
    identity: Identity,
    *,
    params: Mapping[str, Any],
    inputs: Mapping[str, list[ArtifactRecord]],
    type_name: str = CONTAINER_EXECUTION,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Record a task as RUNNING, with its input artifacts and contexts; returns its id."""
    execution = new_execution(
        store,
        identity,
        state=pb.Execution.RUNNING,
        params=params,
        type_name=type_name,
        extra=extra,
    )
    execution_id, _, _ = store.call(
        store.mlmd.put_execution,
        execution,
        _input_pairs(store, inputs),
        contexts_for(store, identity),
        reuse_context_if_already_exist=True,
    )
    return execution_id


def finish_execution(
    store: Store,
    identity: Identity,
    execution_id: int,
    *,
    outputs: Mapping[str, list[ArtifactRecord]],
    output_params: Mapping[str, Any],
    state: int = pb.Execution.COMPLETE,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, list[int]]:
    """Publish outputs as LIVE artifacts and mark the execution done, in one transaction.

    Either all of it is visible or none: an execution is never COMPLETE without its
    output artifacts and events.
    """
    [execution] = store.call(store.mlmd.get_executions_by_id, [execution_id])
    execution.last_known_state = state
    to_value(dict(output_params), execution.custom_properties["outputs"])
    end = time.time()
    to_value(end, execution.custom_properties["end_time"])
    start = from_value(execution.custom_properties["start_time"])
    if isinstance(start, float):
        to_value(round(end - start, 3), execution.custom_properties["wall_seconds"])
    for name, value in (extra or {}).items():
        if value is not None:
            to_value(value, execution.custom_properties[name])
    pairs = []
    keys = []
    for key, records in outputs.items():
        for index, record in enumerate(records):
            event = _event(pb.Event.OUTPUT, key, index if len(records) > 1 else None)
            artifact = _artifact_proto(store, record, pb.Artifact.LIVE)
            written = written_content(record.uri) if record.uri else None
            if written is not None and CONTENT_FILES not in record.metadata:
                artifact.custom_properties[CONTENT_FILES].int_value = written[0]
                artifact.custom_properties[CONTENT_BYTES].int_value = written[1]
            pairs.append((artifact, event))
            keys.append(key)
    _, artifact_ids, _ = store.call(
        store.mlmd.put_execution,
        execution,
        pairs,
        contexts_for(store, identity),
        reuse_context_if_already_exist=True,
    )
    ids: dict[str, list[int]] = {}
    for key, artifact_id in zip(keys, artifact_ids, strict=True):
        ids.setdefault(key, []).append(artifact_id)
    return ids


def fail_execution(
    store: Store, execution_id: int, message: str, extra: Mapping[str, Any] | None = None
) -> None:
    """Mark an execution FAILED with a one-line reason (never its outputs), and ``extra``
    properties (None values left out)."""
    [execution] = store.call(store.mlmd.get_executions_by_id, [execution_id])
    if execution.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED):
        return
    execution.last_known_state = pb.Execution.FAILED
    to_value(message[:4000], execution.custom_properties["error"])
    to_value(time.time(), execution.custom_properties["end_time"])
    for name, value in (extra or {}).items():
        if value is not None:
            to_value(value, execution.custom_properties[name])
    store.call(store.mlmd.put_executions, [execution])


def record_outcome(
    store: Store,
    identity: Identity,
    *,
    state: int,
    params: Mapping[str, Any],
    inputs: Mapping[str, list[ArtifactRecord]] | None = None,
    outputs: Mapping[str, list[ArtifactRecord]] | None = None,
    type_name: str = CONTAINER_EXECUTION,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Record a finished task in one call: cached (reusing outputs), skipped or failed."""
    execution = new_execution(store, identity, state=state, params=params, type_name=type_name, extra=extra)
    to_value(time.time(), execution.custom_properties["end_time"])
    pairs = _input_pairs(store, inputs or {})
    for key, records in (outputs or {}).items():
        for record in records:
            [artifact] = store.call(store.mlmd.get_artifacts_by_id, [record.id])
            pairs.append((artifact, _event(pb.Event.OUTPUT, key)))
    execution_id, _, _ = store.call(
        store.mlmd.put_execution,
        execution,
        pairs,
        contexts_for(store, identity),
        reuse_context_if_already_exist=True,
    )
    return execution_id


def outputs_of(store: Store, execution_id: int) -> dict[str, list[pb.Artifact]]:
    """Output artifacts of an execution, by output name, in event order."""
    events = store.call(store.mlmd.get_events_by_execution_ids, [execution_id])
    outs = [e for e in events if e.type == pb.Event.OUTPUT]
    artifacts = {a.id: a for a in store.call(store.mlmd.get_artifacts_by_id, [e.artifact_id for e in outs])}
    result: dict[str, list[pb.Artifact]] = {}
    for event in outs:
        result.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
    return result


def find_cached(store: Store, cache_key: str) -> Iterable[pb.Execution]:
    """Completed executions with this cache key, newest first."""
    from ml_metadata.metadata_store import ListOptions

    query = (
        f"custom_properties.cache_fingerprint.string_value = '{cache_key}' AND last_known_state = COMPLETE"
    )
    found = store.call(store.mlmd.get_executions, list_options=ListOptions(filter_query=query))
    return sorted(found, key=lambda e: -e.id)


def update_run(store: Store, identity: Identity, **fields: Any) -> int:
    """Create or update the run context with run-level facts (state, parameters, times)."""
    pipeline, run = contexts_for(store, identity)
    existing = store.call(store.mlmd.get_context_by_type_and_name, RUN_CONTEXT, identity.run_id)
    if existing is not None:
        existing.custom_properties.MergeFrom(run.custom_properties)
        run = existing
    else:
        to_value(time.time(), run.custom_properties["start_time"])
    if fields.get("state") in ("SUCCEEDED", "FAILED"):
        to_value(time.time(), run.custom_properties["end_time"])
    for name, value in fields.items():
        if value is not None:
            to_value(value, run.custom_properties[name])
    if existing is None:
        got = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, identity.pipeline_name)
        if got is None:
            try:
                store.call(store.mlmd.put_contexts, [pipeline])
            except mlmd_errors.AlreadyExistsError:
                pass  # another run created it a moment ago
    [run_id] = store.call(store.mlmd.put_contexts, [run])
    return run_id


def output_records(
    executor_input: dict[str, Any], document: dict[str, Any], staged: dict[str, str]
) -> dict[str, list[ArtifactRecord]]:
    """Output artifacts from an executor-output document (declared ones where it is silent),
    at their final URIs, with the content fingerprint of their data (local, or in an
    object store: the launcher's local copy when there is one)."""
    from kubetfx.fingerprint import fingerprint_path, fingerprint_remote
    from kubetfx.staging import is_local

    written = document.get("artifacts", {})
    records: dict[str, list[ArtifactRecord]] = {}
    for key, spec in executor_input.get("outputs", {}).get("artifacts", {}).items():
        if key == EXECUTOR_LOGS:
            continue
        runtime = written.get(key, spec).get("artifacts", [])
        result = []
        for index, artifact in enumerate(runtime):
            declared = spec["artifacts"][min(index, len(spec["artifacts"]) - 1)]
            merged = {**declared, **artifact}
            merged["uri"] = staged.get(merged.get("uri", ""), merged.get("uri", ""))
            record = ArtifactRecord.from_runtime(key, merged)
            if record.uri and FINGERPRINT_KEY not in record.metadata:
                # The task wrapper hashed it already, if it ran.
                fp = fingerprint_path(record.uri) if is_local(record.uri) else fingerprint_remote(record.uri)
                if fp:
                    record.metadata[FINGERPRINT_KEY] = fp
            result.append(record)
        records[key] = result
    return records
