"""The environment a kubetfx task gets: every variable, its meaning, and who sets it.

One typed record, :class:`TaskEnv`, read with :meth:`TaskEnv.from_env` by the task
wrapper (:mod:`kubetfx.task`) and written with :meth:`TaskEnv.to_env` by the local
runner; the warm worker leaves its per-task variables out of a worker's identity
(:data:`PER_TASK`). In a cluster the same variables come from the namespace
(:data:`SETTINGS_KEYS` from the ``kubetfx-settings`` ConfigMap, :data:`SECRET_KEYS` and
:data:`OBJECT_STORE_SECRET_KEYS` from the Secrets, wired by
:func:`kubetfx.cluster.use_cluster_settings`) and from the pod (the run id).

The variables' names and groups are defined in :mod:`kubetfx.envvars` (constants only,
for the warm worker's client) and re-exported here. Kept light (the standard library
and constants-only kubetfx modules).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from kubetfx.envvars import (
    AWS_ACCESS_KEY,
    AWS_ENDPOINT,
    AWS_REGION,
    AWS_SECRET_KEY,
    BATCH_MB,
    CACHE_KEY,
    COMPONENT_VERSION,
    DIE_WITH_RUNNER,
    EXECUTION_ID,
    GLOG_LEVEL,
    GLOG_LEVEL_DEFAULT,
    IN_PROCESS_MAX_ROWS,
    METADATA,
    METADATA_PASSWORD,
    MOUNT_ROOT,
    OBJECT_STORE_SECRET_KEYS,
    OBJECT_STORE_SETTINGS,
    PER_TASK,
    PIPELINE_ROOT,
    PUSH_ROOT,
    PUSHGATEWAY,
    PUSHGATEWAY_TIMEOUT,
    RUNNER_PID,
    S3_ENDPOINT,
    SECRET_KEYS,
    SETTINGS_KEYS,
    STATE_FILE,
    TF_LOG_LEVEL,
    TF_LOG_LEVEL_DEFAULT,
    TMPDIR,
    UNBUFFERED,
)
from kubetfx.identity import ENV_PIPELINE, ENV_RUN, ENV_TASK

__all__ = [
    "AWS_ACCESS_KEY",
    "AWS_ENDPOINT",
    "AWS_REGION",
    "AWS_SECRET_KEY",
    "BATCH_MB",
    "CACHE_KEY",
    "COMPONENT_VERSION",
    "DIE_WITH_RUNNER",
    "EXECUTION_ID",
    "GLOG_LEVEL",
    "GLOG_LEVEL_DEFAULT",
    "IN_PROCESS_MAX_ROWS",
    "METADATA",
    "METADATA_PASSWORD",
    "MOUNT_ROOT",
    "OBJECT_STORE_SECRET_KEYS",
    "OBJECT_STORE_SETTINGS",
    "PER_TASK",
    "PIPELINE_ROOT",
    "PUSHGATEWAY",
    "PUSHGATEWAY_TIMEOUT",
    "PUSH_ROOT",
    "RUNNER_PID",
    "S3_ENDPOINT",
    "SECRET_KEYS",
    "SETTINGS_KEYS",
    "STATE_FILE",
    "TF_LOG_LEVEL",
    "TF_LOG_LEVEL_DEFAULT",
    "TMPDIR",
    "TaskEnv",
    "UNBUFFERED",
    "quiet_metadata",
    "quiet_tensorflow",
]


@dataclass(frozen=True)
class TaskEnv:
    """The kubetfx variables of one task's environment (empty: not set).

    Each field's comment names its variable; :meth:`to_env` writes the set fields,
    :meth:`from_env` reads them back.
    """

    metadata: str = ""  # KUBETFX_METADATA: the metadata store; empty: lineage off
    pipeline_root: str = ""  # KUBETFX_PIPELINE_ROOT
    push_root: str = ""  # KUBETFX_PUSH_ROOT: allowed push roots, comma-separated
    pipeline_name: str = ""  # KUBETFX_PIPELINE_NAME
    run_id: str = ""  # KUBETFX_RUN_ID
    task_name: str = ""  # KUBETFX_TASK_NAME
    cache_key: str = ""  # KUBETFX_CACHE_KEY: recorded with the execution
    state_file: str = ""  # KUBETFX_TASK_STATE: where the task reports to the local runner
    die_with_runner: bool = False  # KUBETFX_DIE_WITH_RUNNER
    runner_pid: int | None = None  # KUBETFX_RUNNER_PID
    mount_root: str = ""  # KUBETFX_LOCAL_MOUNT_ROOT: object-store mode's launcher paths
    tmpdir: str = ""  # TMPDIR
    unbuffered: bool = False  # PYTHONUNBUFFERED: the log is written as the task goes
    component_version: str = ""  # KUBETFX_COMPONENT_VERSION
    execution_id: int | None = None  # KUBETFX_EXECUTION_ID

    def to_env(self) -> dict[str, str]:
        """The set fields as environment variables."""
        env: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value == "" or value is False:
                continue
            env[_NAMES[item.name]] = "1" if value is True else str(value)
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TaskEnv:
        """Read the fields from ``env`` (default: this process's environment)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for item in fields(cls):
            raw = env.get(_NAMES[item.name], "")
            if item.name in _FLAGS:
                values[item.name] = raw == "1"
            elif item.name in _NUMBERS:
                values[item.name] = int(raw) if raw.isdigit() else None
            else:
                values[item.name] = raw
        return cls(**values)  # type: ignore[arg-type]


_NAMES = {
    "metadata": METADATA,
    "pipeline_root": PIPELINE_ROOT,
    "push_root": PUSH_ROOT,
    "pipeline_name": ENV_PIPELINE,
    "run_id": ENV_RUN,
    "task_name": ENV_TASK,
    "cache_key": CACHE_KEY,
    "state_file": STATE_FILE,
    "die_with_runner": DIE_WITH_RUNNER,
    "runner_pid": RUNNER_PID,
    "mount_root": MOUNT_ROOT,
    "tmpdir": TMPDIR,
    "unbuffered": UNBUFFERED,
    "component_version": COMPONENT_VERSION,
    "execution_id": EXECUTION_ID,
}
_FLAGS = frozenset({"die_with_runner", "unbuffered"})
_NUMBERS = frozenset({"runner_pid", "execution_id"})


def quiet_metadata() -> None:
    """What importing the lineage store does (:mod:`kubetfx.lineage.store`); the runner
    does it before it takes the environment its tasks start from, so they inherit it."""
    os.environ.setdefault(GLOG_LEVEL, GLOG_LEVEL_DEFAULT)


def quiet_tensorflow() -> None:
    """What every task does before it imports TensorFlow (the warm worker too, so a task
    forked from it sees what a fresh process would)."""
    os.environ.setdefault(TF_LOG_LEVEL, TF_LOG_LEVEL_DEFAULT)
