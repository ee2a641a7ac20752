"""The environment a kubetfx task gets: every variable, its meaning, and who sets it.

One typed record, :class:`TaskEnv`, read with :meth:`TaskEnv.from_env` by the task
wrapper (:mod:`kubetfx.task`) and written with :meth:`TaskEnv.to_env` by the local
runner; the warm worker leaves its per-task variables out of a worker's identity
(:data:`PER_TASK`). In a cluster the same variables come from the namespace
(:data:`SETTINGS_KEYS` from the ``kubetfx-settings`` ConfigMap, :data:`SECRET_KEYS` and
:data:`OBJECT_STORE_SECRET_KEYS` from the Secrets, wired by
:func:`kubetfx.cluster.use_cluster_settings`) and from the pod (the run id).

Kept light (the standard library and constants-only kubetfx modules): the warm worker's
client imports it without site-packages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from kubetfx.identity import ENV_PIPELINE, ENV_RUN, ENV_TASK

# Settings (also kubetfx.settings' names for them).
METADATA = "KUBETFX_METADATA"
METADATA_PASSWORD = "KUBETFX_METADATA_PASSWORD"  # noqa: S105 - a variable name
PIPELINE_ROOT = "KUBETFX_PIPELINE_ROOT"
PUSH_ROOT = "KUBETFX_PUSH_ROOT"
# The object store: the endpoint kubetfx reads first (local), then the standard AWS names.
S3_ENDPOINT = "KUBETFX_S3_ENDPOINT"
AWS_ENDPOINT = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_DEFAULT_REGION"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
AWS_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
# Metrics (kubetfx.metrics): the Pushgateway a task pushes to when it ends; empty: off.
PUSHGATEWAY = "KUBETFX_PUSHGATEWAY"
PUSHGATEWAY_TIMEOUT = "KUBETFX_PUSHGATEWAY_TIMEOUT"
# Memory bounds of the data tasks (empty: the defaults): megabytes of input per batch when a
# task reads a table batch by batch, and the most eval examples the Evaluator's in-process
# engine takes before it goes to TFMA's Beam pipeline. Set per cluster to fit its nodes.
BATCH_MB = "KUBETFX_BATCH_MB"
IN_PROCESS_MAX_ROWS = "KUBETFX_IN_PROCESS_MAX_ROWS"

# Set per task by the runner (locally) and read by the task wrapper.
CACHE_KEY = "KUBETFX_CACHE_KEY"
STATE_FILE = "KUBETFX_TASK_STATE"
DIE_WITH_RUNNER = "KUBETFX_DIE_WITH_RUNNER"
RUNNER_PID = "KUBETFX_RUNNER_PID"
MOUNT_ROOT = "KUBETFX_LOCAL_MOUNT_ROOT"  # object-store mode: the task's own folder (its "pod")
TMPDIR = "TMPDIR"
UNBUFFERED = "PYTHONUNBUFFERED"
# Compiled into every kubetfx component's command (kubetfx.dsl).
COMPONENT_VERSION = "KUBETFX_COMPONENT_VERSION"
# Set by the task wrapper for its executor (kubetfx.task.add_input).
EXECUTION_ID = "KUBETFX_EXECUTION_ID"

# TensorFlow's C++ start-up chatter: off in every task unless the environment says otherwise.
TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
TF_LOG_LEVEL_DEFAULT = "2"
# ML Metadata's C++ side logs to stderr through glog, in its own words ("MySQL database was
# not initialized..."), next to the one-line error kubetfx gives: fatal messages only,
# unless the environment asks for more (GLOG_minloglevel=0).
GLOG_LEVEL = "GLOG_minloglevel"
GLOG_LEVEL_DEFAULT = "3"

# What the ``kubetfx-settings`` ConfigMap and the Secrets hold, by name (kubetfx.cluster).
OBJECT_STORE_SETTINGS = (AWS_ENDPOINT, AWS_REGION)
SETTINGS_KEYS = (
    METADATA,
    PIPELINE_ROOT,
    PUSH_ROOT,
    PUSHGATEWAY,
    PUSHGATEWAY_TIMEOUT,
    BATCH_MB,
    IN_PROCESS_MAX_ROWS,
    *OBJECT_STORE_SETTINGS,
)
SECRET_KEYS = (METADATA_PASSWORD,)
OBJECT_STORE_SECRET_KEYS = (AWS_ACCESS_KEY, AWS_SECRET_KEY)

# What differs from one task or run to the next (and nothing reads at import time).
PER_TASK = frozenset(
    {
        METADATA,
        METADATA_PASSWORD,
        PIPELINE_ROOT,
        ENV_PIPELINE,
        ENV_RUN,
        ENV_TASK,
        CACHE_KEY,
        STATE_FILE,
        DIE_WITH_RUNNER,
        RUNNER_PID,
        PUSH_ROOT,
        PUSHGATEWAY,
        PUSHGATEWAY_TIMEOUT,
        COMPONENT_VERSION,
        EXECUTION_ID,
        MOUNT_ROOT,
        TMPDIR,
        UNBUFFERED,
    }
)


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
