"""Where a kubetfx task learns who it is: its pipeline, run, task and lineage scope.

Kept apart from :mod:`kubetfx.dsl` so the task wrapper can use them without importing
kfp's authoring side (which a task runs without, under ``_KFP_RUNTIME``).

Identity never travels as an input parameter: the KFP backend puts every input
parameter value into its cache key, so a per-run value (the run id) there would make
every run miss the cache. It comes from the environment instead, which the cache key
leaves out:

* ``KUBETFX_PIPELINE_NAME`` and ``KUBETFX_TASK_NAME``: compiled in by
  :func:`kubetfx.cluster.use_cluster_settings` (the local runner sets its own);
* ``KUBETFX_RUN_ID``: in a cluster, from the ``pipeline/runid`` label the KFP API server
  puts on every pod of a run, through the Kubernetes downward API.

The lineage scope is an input (``kubetfx_lineage_scope``): it is constant across the
runs of one scope, so it belongs in the cache key.
"""

ENV_PIPELINE = "KUBETFX_PIPELINE_NAME"
ENV_RUN = "KUBETFX_RUN_ID"
ENV_TASK = "KUBETFX_TASK_NAME"

# The pod label the KFP API server sets on every pod of a run (its value: the run's id).
RUN_ID_POD_LABEL = "pipeline/runid"
RUN_ID_FIELD_PATH = f"metadata.labels['{RUN_ID_POD_LABEL}']"
# Set by the KFP backend in every task container (the pod's name): we run in a KFP pod.
KFP_POD_ENV = "KFP_POD_NAME"

SCOPE_INPUT = "kubetfx_lineage_scope"
SCOPE_PARAMETER = "lineage_scope"  # the reference pipelines' parameter that fills it
DATA_FINGERPRINT_INPUT = "kubetfx_data_fingerprint"
KUBETFX_INPUTS = (SCOPE_INPUT, DATA_FINGERPRINT_INPUT)

# Inputs of components compiled by earlier kubetfx versions, filled from KFP placeholders.
# Still read when present; never part of a cache key.
PIPELINE_INPUT = "kubetfx_pipeline"
RUN_INPUT = "kubetfx_run_id"
TASK_INPUT = "kubetfx_task"
IDENTITY_INPUTS = (PIPELINE_INPUT, RUN_INPUT, TASK_INPUT)
