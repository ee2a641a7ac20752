"""Publishing the validator's complete outputs before it fails the task (see README.md).

The task wrapper (``kubetfx.task``) publishes nothing of a failed task, and KFP's launcher
uploads nothing after a failed command. A failed validation is exactly when its report
is needed, so before raising, the validator publishes its outputs itself, each already
complete: a local output is renamed from its staging path into place (as the wrapper
does on success), an object-store output is uploaded; then they are recorded in lineage
as outputs of the running execution, which the wrapper marks FAILED a moment later.
Output parameters (``anomaly_count``, ``valid``) are not published: the task failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from kubetfx.staging import final_uri

log = logging.getLogger("kubetfx.example_validator")


def _publish_file(path: str, uri: str) -> bool:
    """Put the finished output at ``path`` at its final ``uri``; False when not possible."""
    from kubetfx import staging

    final = final_uri(uri)  # the staging path's own naming rule
    if staging.is_local(final):
        if final == path:
            return os.path.exists(path)
        staging.publish({path: final})  # as the task wrapper publishes on success
        return True
    from kubetfx import storage

    if not os.path.exists(path):
        os.makedirs(path)  # an output with nothing written (Metrics): nothing to upload
    try:
        storage.upload(path, final)
    except storage.StorageError as err:
        log.warning(
            "%s: not uploaded before the failure (%s); the error message still names every anomaly",
            final,
            err,
        )
        return False
    return True


def publish_before_failing(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Publish finished KFP output artifacts (name -> ``kfp.dsl.Artifact``) of the running
    task and record them in lineage; returns name -> final URI of what was published."""
    from kubetfx import task
    from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution

    published: dict[str, str] = {}
    records: dict[str, list[ArtifactRecord]] = {}
    for name, artifact in outputs.items():
        if _publish_file(artifact.path, artifact.uri):
            published[name] = final_uri(artifact.uri)
            records[name] = [
                ArtifactRecord(
                    key=name,
                    uri=published[name],
                    schema_title=artifact.schema_title,
                    metadata=dict(artifact.metadata),
                )
            ]
    store = task.lineage_store()
    execution_id = os.environ.get(task.ENV_EXECUTION_ID, "")
    if store is not None and execution_id.isdigit() and records:
        from ml_metadata.proto import metadata_store_pb2 as pb

        identity = Identity(
            pipeline_name=os.environ.get(task.ENV_PIPELINE, ""),
            run_id=os.environ.get(task.ENV_RUN, ""),
            task_name=os.environ.get(task.ENV_TASK, ""),
            pipeline_root=os.environ.get(task.ENV_PIPELINE_ROOT, ""),
        )
        # Still RUNNING: the task wrapper records the failure, with its message, next.
        finish_execution(
            store, identity, int(execution_id), outputs=records, output_params={}, state=pb.Execution.RUNNING
        )
    return published
