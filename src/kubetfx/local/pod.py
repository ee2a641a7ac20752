"""Object-store mode: what stands in for a task's pod, and KFP's launcher around its command.

Each attempt of a task gets a :class:`Pod`: a new temporary folder in place of the pod's
filesystem (its ``TMPDIR``, working folder, ``/tmp/kfp/outputs`` parameter files), with
the launcher's local paths of its inputs and outputs under it (``minio://b/k`` at
``.../minio/b/k``). :meth:`Pod.download` fetches the inputs there before the command and
:meth:`Pod.upload` sends the outputs to their URIs after it succeeds, as the launcher
does; then the folder goes.

The task's environment is a pod's (:meth:`Pod.environment`): what a process needs to
start, kubetfx's settings and the object store's endpoint and credentials (in a cluster:
the ``kubetfx-settings`` ConfigMap and the Secrets), the variables the task's platform
spec maps from other ConfigMaps and Secrets, the container's own env, and the task's
identity; not the rest of the runner's environment.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubetfx import faults, storage, taskenv
from kubetfx.errors import PipelineSpecError
from kubetfx.faults import failpoint
from kubetfx.identity import RUN_ID_FIELD_PATH
from kubetfx.local import warm
from kubetfx.local.executor_input import ContainerSpec, ExecutorInput, Paths
from kubetfx.local.ir import PlatformExecutor
from kubetfx.taskenv import TaskEnv

# What a process needs to start (the image's own environment, in a cluster).
PROCESS_ENV = ("PATH", "HOME", "PYTHONPATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "LC_CTYPE")
# In a cluster from the namespace (kubetfx.cluster.use_cluster_settings); here from the
# runner's environment, which stands in for the ConfigMap and the Secrets.
NAMESPACE_ENV = (
    *taskenv.SETTINGS_KEYS,
    *taskenv.SECRET_KEYS,
    *taskenv.OBJECT_STORE_SECRET_KEYS,
    taskenv.S3_ENDPOINT,  # the local name of the ConfigMap's AWS_ENDPOINT_URL
)
# Only here: test hooks (kubetfx.faults) and the warm worker's settings.
LOCAL_ENV = (
    faults.ENV,
    faults.DIR_ENV,
    faults.PAUSE_ENV,
    warm.ENABLE_ENV,
    warm.DIR_ENV,
    warm.IDLE_ENV,
    warm.START_ENV,
)


class Pod:
    """One attempt's own folder, in place of a pod's filesystem."""

    def __init__(self, task: str) -> None:
        self.task = task  # the backend's name of the task
        self.path = tempfile.mkdtemp(prefix=f"kubetfx-pod-{task}-")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def tmp(self) -> str:
        return os.path.join(self.path, "tmp")

    @property
    def work(self) -> str:
        """The task's working folder."""
        return os.path.join(self.path, "work")

    @property
    def inner(self) -> Path:
        """Where the task's state file goes."""
        return Path(self.tmp, "kubetfx")

    def paths(self, root: str) -> Paths:
        """The outputs of an attempt whose artifacts go under ``root``: the parameter files
        and executor output in the pod's own /tmp, as KFP's launcher puts them."""
        return {
            "root": root,
            "parameters": os.path.join(self.path, "tmp/kfp/outputs"),
            "output_file": os.path.join(self.path, "tmp/kfp_outputs/output_metadata.json"),
        }

    def prepare(self) -> None:
        """The folders the task finds in its pod."""
        for folder in (self.tmp, self.work, str(self.inner)):
            os.makedirs(folder, exist_ok=True)

    def download(self, qname: str, executor_input: ExecutorInput) -> None:
        """What KFP's launcher does before the command: inputs at their local paths, and the
        folders of output artifacts and parameter files made."""
        for key, spec in executor_input["inputs"]["artifacts"].items():
            for artifact in spec.get("artifacts", []):
                uri = artifact.get("uri", "")
                local = storage.launcher_path(uri, self.path)
                if local is None:
                    raise PipelineSpecError(
                        f"task {qname}: input {key!r} is at {uri}, which a KFP launcher cannot "
                        "download (object-store mode takes s3://, gs:// or minio:// URIs only)"
                    )
                storage.download(uri, local, missing_ok=True)
        for spec in executor_input["outputs"]["artifacts"].values():
            for artifact in spec.get("artifacts", []):
                local = storage.launcher_path(artifact["uri"], self.path)
                if local:
                    os.makedirs(os.path.dirname(local), exist_ok=True)
        for parameter in executor_input["outputs"]["parameters"].values():
            os.makedirs(os.path.dirname(parameter["outputFile"]), exist_ok=True)
        os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)

    def upload(self, executor_input: ExecutorInput, document: dict[str, Any]) -> None:
        """What KFP's launcher does after a command that succeeded: each output artifact's
        local path uploaded to its URI (one the executor did not write is skipped, as there)."""
        written = document.get("artifacts", {})
        # A test hook (kubetfx.faults): after each file uploaded, before the rest.
        point = f"launcher.upload.{self.task}"
        for key, spec in executor_input["outputs"]["artifacts"].items():
            runtime = written.get(key, spec).get("artifacts", []) or spec.get("artifacts", [])
            for artifact in runtime:
                uri = artifact.get("uri") or spec["artifacts"][0]["uri"]
                local = storage.launcher_path(uri, self.path)
                if local and os.path.exists(local):
                    storage.upload(local, uri, progress=functools.partial(failpoint, point))

    def environment(
        self,
        task: TaskEnv,
        container: ContainerSpec,
        platform: PlatformExecutor,
        source: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The task's environment, as a pod's (see the module docstring).

        ``platform``: the task's executor config in the Kubernetes platform spec
        (``configMapAsEnv``, ``secretAsEnv``, ``fieldPathAsEnv``); ``source``: the
        runner's environment (default: this process's); ``extra``: variables the runner's
        caller gives every task.
        """
        return pod_environment(task, container, platform, source, extra)


def pod_environment(
    task: TaskEnv,
    container: ContainerSpec,
    platform: PlatformExecutor,
    source: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A task's environment in object-store mode (:meth:`Pod.environment`)."""
    source = os.environ if source is None else source
    names = [*PROCESS_ENV, *NAMESPACE_ENV, *LOCAL_ENV]
    for mapping in (*platform.get("configMapAsEnv", []), *platform.get("secretAsEnv", [])):
        names += [item.get("envVar", "") for item in mapping.get("keyToEnv", [])]
    env = {name: source[name] for name in names if name and name in source}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + source.get("PATH", "")
    env.update({item["name"]: item.get("value", "") for item in container.get("env", []) if "name" in item})
    for item in platform.get("fieldPathAsEnv", []):
        if item.get("fieldPath") == RUN_ID_FIELD_PATH and task.run_id:
            env[item["name"]] = task.run_id
    env.update(extra or {})
    env.update(task.to_env())
    return env
