"""The names of the environment variables a kubetfx task reads or is given, in groups.

Constants only, on purpose: the warm worker's client imports this on every task's start
(without site-packages), and the typed record of a task's environment,
:class:`kubetfx.taskenv.TaskEnv` (a dataclass, whose import costs the client more than
its own), lives in :mod:`kubetfx.taskenv`, which re-exports every name here.
"""

from __future__ import annotations

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
