"""``dsl.importer`` tasks: an artifact that exists already, brought into the run and its lineage."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubetfx import storage
from kubetfx.errors import PipelineSpecError
from kubetfx.fingerprint import fingerprint_uri, local_path
from kubetfx.local.executor_input import lineage_record
from kubetfx.local.ir import Values
from kubetfx.local.results import SUCCEEDED, Artifact, TaskResult

if TYPE_CHECKING:
    from kubetfx.lineage.record import Identity
    from kubetfx.lineage.store import Store


def run_importer(
    store: Store,
    identity: Identity,
    importer: dict[str, Any],
    params: Values,
    *,
    remote: bool,
    echo: Callable[[str], None],
) -> TaskResult:
    """Run a ``dsl.importer`` task: check the URI it names, record the artifact (reusing one
    of the same URI and content unless ``reimport``), hand it on."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage import record

    qname = identity.task_name
    started = time.monotonic()
    source = importer.get("artifactUri", {})
    uri = source["constant"] if "constant" in source else params[source["runtimeParameter"]]
    type_schema = importer.get("typeSchema", {})
    metadata = dict(importer.get("metadata") or {})
    path = local_path(uri)
    if remote and not storage.is_remote(uri):
        # KFP's launcher downloads only object-store URIs: a path or pkg:// on this
        # machine would not reach a pod.
        raise PipelineSpecError(
            f"importer {qname}: {uri} is not an object-store URI (s3://, gs://, minio://); "
            "in object-store mode, as in a cluster, upload it first and import its URI"
        )
    if path is not None and not path.exists():
        raise FileNotFoundError(f"importer {qname}: nothing at {uri}")
    if path is None and storage.is_remote(uri) and not storage.exists(uri):
        raise FileNotFoundError(f"importer {qname}: nothing at {uri}")
    fp = fingerprint_uri(uri)
    if fp:
        metadata[record.FINGERPRINT_KEY] = fp
    artifact = Artifact(
        key="artifact",
        uri=str(path) if path is not None and "://" not in uri else uri,
        schema_title=type_schema.get("schemaTitle", "system.Artifact"),
        schema_version=type_schema.get("schemaVersion", "0.0.1"),
        metadata=metadata,
    )
    existing = None if importer.get("reimport") else record.find_artifact(store, artifact.uri)
    if existing is not None and record.props(existing).get(record.FINGERPRINT_KEY) == fp:
        artifact.id = existing.id
        execution_id = record.record_outcome(
            store,
            identity,
            state=pb.Execution.COMPLETE,
            params={"uri": uri},
            outputs={"artifact": [lineage_record(artifact)]},
            type_name=record.IMPORTER_EXECUTION,
        )
    else:
        execution_id = record.start_execution(
            store, identity, params={"uri": uri}, inputs={}, type_name=record.IMPORTER_EXECUTION
        )
        ids = record.finish_execution(
            store,
            identity,
            execution_id,
            outputs={"artifact": [lineage_record(artifact)]},
            output_params={},
        )
        artifact.id = ids["artifact"][0]
    seconds = time.monotonic() - started
    echo(f"  {qname}: imported {artifact.uri}")
    return TaskResult(
        name=qname,
        state=SUCCEEDED,
        artifacts={"artifact": [artifact]},
        seconds=seconds,
        execution_id=execution_id,
        kind="importer",
    )
