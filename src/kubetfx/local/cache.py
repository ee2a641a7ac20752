"""The local runner's cache: a task's cache key, the hit it may reuse, and pending uploads.

A task's key hashes what the KFP backend's cache key holds (image, command, arguments,
input values, input artifacts, output types) plus the content of local data its
parameters name and, for kubetfx tasks, the installed kubetfx sources. A hit is a
COMPLETE execution with that key whose outputs this run can still read.

Object-store mode: a kubetfx task records itself COMPLETE before the launcher uploads
its outputs, so it carries a *pending* key (``upload-pending:HOST:PID:KEY``) until every
output is in the store (:meth:`Cache.uploaded`). An upload that fails, or whose runner
died (the next lookup with that key finds the PID gone), marks the execution FAILED, its
outputs ABANDONED, and removes what was uploaded of them (:meth:`Cache.abandon`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kubetfx import storage
from kubetfx.fingerprint import fingerprint_files, fingerprint_uri
from kubetfx.identity import IDENTITY_INPUTS
from kubetfx.local.executor_input import TASK_MODULE_MARK, ContainerSpec, ExecutorInput
from kubetfx.local.results import Artifact, Artifacts

if TYPE_CHECKING:
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage.store import Store

# Object-store mode: a task's cache key until its outputs are all in the store.
UPLOAD_PENDING = "upload-pending:"

Hit = tuple["pb.Execution", dict[str, list["pb.Artifact"]]]


def cache_key(container: ContainerSpec, executor_input: ExecutorInput, artifacts: Artifacts) -> str:
    """The key under which a task's outputs are reused (see the module docstring)."""
    params = {
        k: v for k, v in executor_input["inputs"]["parameterValues"].items() if k not in IDENTITY_INPUTS
    }
    data = {}
    for key, value in params.items():
        # A parameter that names local data (a file, folder or {SPAN} pattern) folds
        # that data's content into the key: a changed file at the same path must miss.
        if isinstance(value, str) and ("/" in value or value.startswith("pkg://")):
            fp = fingerprint_uri(value)
            if fp:
                data[key] = fp
    command_text = " ".join(map(str, container.get("command", [])))
    document = {
        # kubetfx tasks import shared modules beyond their own folder (which is all
        # KUBETFX_COMPONENT_VERSION covers): fold the installed sources in as well.
        "runtime": kubetfx_sources() if TASK_MODULE_MARK in command_text else "",
        "image": container.get("image"),
        "command": container.get("command"),
        "args": container.get("args"),
        "params": params,
        "data": data,
        "artifacts": {k: [a.fingerprint() for a in arts] for k, arts in artifacts.items()},
        "outputs": {k: v["artifacts"][0]["type"] for k, v in executor_input["outputs"]["artifacts"].items()},
        "output_params": sorted(executor_input["outputs"]["parameters"]),
    }
    blob = json.dumps(document, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@functools.lru_cache(maxsize=1)
def kubetfx_sources() -> str:
    """A hash of the installed kubetfx runtime and component sources (once per process)."""
    # Where the packages are, without running the components' __init__ (which would
    # import every component definition, and kfp with them).
    folders = [
        folder
        for name in ("kubetfx", "kubetfx.components")
        for folder in (getattr(importlib.util.find_spec(name), "submodule_search_locations", None) or [])
    ]
    files = [str(path) for base in folders for path in Path(base).rglob("*.py")]
    return fingerprint_files(sorted(set(files)), base=None) or ""


class Cache:
    """Cache lookups and upload bookkeeping in one run's metadata store."""

    def __init__(self, store: Store, *, remote: bool, echo: Callable[[str], None]) -> None:
        self.store = store
        self.remote = remote  # object-store mode: hits must be in the store
        self.echo = echo

    def pending(self, key: str) -> str:
        """Object-store mode: the key a kubetfx task records until its outputs are uploaded."""
        return f"{UPLOAD_PENDING}{socket.gethostname()}:{os.getpid()}:{key}" if self.remote else ""

    def hit(self, key: str) -> Hit | None:
        """A completed execution with ``key`` whose outputs are all still readable, if any."""
        from kubetfx.lineage import record

        if self.remote:
            self._abandon_dead_uploads(key)
        for execution in record.find_cached(self.store, key):
            outputs = record.outputs_of(self.store, execution.id)
            # A hit whose outputs were deleted since is no hit; nor one whose outputs a task
            # of this mode cannot read (local outputs in object-store mode, or the reverse).
            if all(self._reachable(a) for arts in outputs.values() for a in arts if a.uri):
                return execution, outputs
        return None

    def artifacts(self, outputs: dict[str, list[pb.Artifact]]) -> Artifacts:
        """A hit's outputs, to hand on as this task's."""
        return {key: [self._artifact(key, a) for a in arts] for key, arts in outputs.items()}

    def _artifact(self, key: str, artifact: pb.Artifact) -> Artifact:
        from kubetfx.artifacts.kinds import kfp_title
        from kubetfx.lineage.record import props

        types = self.store.call(self.store.mlmd.get_artifact_types_by_id, [artifact.type_id])
        metadata = {k: v for k, v in props(artifact).items() if k != "display_name"}
        type_name = types[0].name if types else "system.Artifact"
        return Artifact(
            key=key,
            uri=artifact.uri,
            schema_title=kfp_title(type_name) if type_name.startswith("kubetfx.") else type_name,
            metadata=metadata,
            id=artifact.id,
        )

    def _reachable(self, artifact: pb.Artifact) -> bool:
        from kubetfx.lineage.record import FINGERPRINT_KEY, props

        uri = artifact.uri
        if storage.is_remote(uri) != self.remote:
            return False
        if self.remote and not props(artifact).get(FINGERPRINT_KEY):
            # The launcher uploads nothing for an output its task did not write (a Metrics
            # artifact whose values are in the executor output): nothing there to miss.
            return True
        try:
            return storage.exists(uri)
        except storage.StorageError:
            return False

    def _abandon_dead_uploads(self, key: str) -> None:
        """Executions with this key whose runner died before their outputs were all
        uploaded: FAILED, their outputs ABANDONED and removed from the store."""
        from ml_metadata.metadata_store import ListOptions

        query = (
            f"custom_properties.cache_fingerprint.string_value LIKE '{UPLOAD_PENDING}%:{key}'"
            " AND last_known_state = COMPLETE"
        )
        found = self.store.call(self.store.mlmd.get_executions, list_options=ListOptions(filter_query=query))
        for execution in found:
            tag = execution.custom_properties["cache_fingerprint"].string_value
            host, _, rest = tag[len(UPLOAD_PENDING) :].partition(":")
            pid = rest.partition(":")[0]
            if host != socket.gethostname() or not pid.isdigit() or _pid_alive(int(pid)):
                continue  # uploading now (another run), or on a machine we cannot look at
            self.abandon(
                execution.id,
                f"the runner (pid {pid}) stopped before the launcher had uploaded this task's "
                "outputs to the object store",
            )

    def abandon(self, execution_id: int, message: str) -> None:
        """A COMPLETE execution whose outputs never fully reached the object store: FAILED,
        its output artifacts ABANDONED, what was uploaded of them removed."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record
        from kubetfx.lineage.record import to_value

        [execution] = self.store.call(self.store.mlmd.get_executions_by_id, [execution_id])
        outputs = record.outputs_of(self.store, execution_id)
        abandoned = []
        for artifacts in outputs.values():
            for artifact in artifacts:
                if artifact.uri and storage.is_remote(artifact.uri):
                    try:
                        storage.remove(artifact.uri)
                    except storage.StorageError as err:
                        self.echo(f"  warning: could not remove the partial upload {artifact.uri}: {err}")
                artifact.state = pb.Artifact.ABANDONED
                abandoned.append(artifact)
        if abandoned:
            self.store.call(self.store.mlmd.put_artifacts, abandoned)
        execution.last_known_state = pb.Execution.FAILED
        to_value(message[:4000], execution.custom_properties["error"])
        self.store.call(self.store.mlmd.put_executions, [execution])

    def uploaded(self, execution_id: int, key: str) -> None:
        """Every output is in the store: the execution's real cache key, for later runs."""
        from kubetfx.lineage.record import to_value

        [execution] = self.store.call(self.store.mlmd.get_executions_by_id, [execution_id])
        to_value(key, execution.custom_properties["cache_fingerprint"])
        self.store.call(self.store.mlmd.put_executions, [execution])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["UPLOAD_PENDING", "Cache", "cache_key", "kubetfx_sources"]
