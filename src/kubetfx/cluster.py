"""What a compiled pipeline's tasks need in a Kubeflow namespace, set at compile time.

In a cluster a task learns kubetfx's settings from the environment, like it does locally,
and the environment comes from the namespace (``kustomize/base``): the ConfigMap
``kubetfx-settings`` (pipeline root, metadata store address, allowed push root, the
object store's endpoint and region), the Secret ``kubetfx-metadata`` (the metadata
store's password) and the Secret ``kubetfx-object-store`` (the object store's access
key). :func:`use_cluster_settings`, called at the end of a pipeline function, wires
every task to them through kfp-kubernetes, so no setting and no secret ever travels as a
pipeline parameter. It also gives each task its identity (:mod:`kubetfx.identity`): the
pipeline and task names compiled in, the run id from the pod's ``pipeline/runid`` label.
The local runner reads this part of the compiled YAML in object-store mode only, where a
task gets a pod's environment (:mod:`kubetfx.local.pod`); by default the runner's own
environment applies.

:func:`use_lineage_scope`, called at the start of a pipeline function with one of its
parameters, makes that parameter the lineage scope of every kubetfx task.

GPU placement is the platform team's too: ``kubetfx compile --accelerator-profile FILE``
makes :func:`place_on_accelerator` apply that profile (``kubetfx.accelerators``) to the
tasks a pipeline marks as GPU tasks (the Trainer in the reference pipelines).
"""

from __future__ import annotations

from typing import Any

from kubetfx.identity import ENV_PIPELINE, ENV_RUN, ENV_TASK, RUN_ID_FIELD_PATH
from kubetfx.taskenv import OBJECT_STORE_SECRET_KEYS, OBJECT_STORE_SETTINGS, SECRET_KEYS, SETTINGS_KEYS

# The keys each object holds are the task environment's (kubetfx.taskenv).
SETTINGS_CONFIG_MAP = "kubetfx-settings"
METADATA_CREDENTIALS = "kubetfx-metadata"  # the name of the Kubernetes Secret object
OBJECT_STORE_CREDENTIALS = "kubetfx-object-store"  # the name of the Kubernetes Secret object
__all__ = [
    "METADATA_CREDENTIALS",
    "OBJECT_STORE_CREDENTIALS",
    "OBJECT_STORE_SECRET_KEYS",
    "OBJECT_STORE_SETTINGS",
    "SECRET_KEYS",
    "SETTINGS_CONFIG_MAP",
    "SETTINGS_KEYS",
    "place_on_accelerator",
    "set_accelerator_profile",
    "use_cluster_settings",
    "use_lineage_scope",
]

_profile: Any = None  # set by `kubetfx compile --accelerator-profile` while compiling


def set_accelerator_profile(profile: Any) -> None:
    """The profile :func:`place_on_accelerator` applies (None: CPU placement)."""
    global _profile
    _profile = profile


def place_on_accelerator(task: Any) -> Any:
    """Apply the compile-time accelerator profile to ``task``, if one was given."""
    if _profile is not None:
        _profile.apply(task)
    return task


def _current_pipeline(caller: str) -> Any:
    from kfp.dsl import pipeline_context

    pipeline = pipeline_context.Pipeline.get_default_pipeline()
    if pipeline is None:
        raise RuntimeError(f"{caller}() is called inside a @dsl.pipeline function")
    return pipeline


def use_lineage_scope(scope: Any) -> None:
    """Make ``scope`` (a pipeline parameter, or a fixed string) the lineage scope of every
    kubetfx task created after this call in the pipeline being defined.

    The scope names the pipeline context lineage queries look in: the resolver's baseline,
    drift baselines and the data change check see only runs of the same scope. An empty
    value means the pipeline's own name. Call it first thing in the pipeline function.
    """
    from kubetfx.dsl import SCOPE_ATTRIBUTE

    pipeline = _current_pipeline("use_lineage_scope")
    if pipeline.tasks:
        raise RuntimeError("use_lineage_scope() comes before the pipeline's first task")
    setattr(pipeline, SCOPE_ATTRIBUTE, scope)


def use_cluster_settings() -> None:
    """Give every task of the pipeline being defined kubetfx's ConfigMap and Secrets as env,
    and its identity: the pipeline's and the task's names (compiled in) and the run's id
    (from the pod's ``pipeline/runid`` label, which the KFP API server sets)."""
    from kfp import kubernetes

    pipeline = _current_pipeline("use_cluster_settings")
    for task in pipeline.tasks.values():
        if task.container_spec is None:  # an importer or a nested pipeline: no pod of its own
            continue
        # Lineage groups runs by the pipeline's name; no KFP placeholder carries it
        # ({{$.pipeline_job_name}} is the run's display name), so it is compiled in. None
        # of this is in KFP's cache key (it holds no environment), so cached tasks still hit.
        task.set_env_variable(ENV_PIPELINE, pipeline.name)
        task.set_env_variable(ENV_TASK, task.name)
        kubernetes.use_field_path_as_env(task, ENV_RUN, RUN_ID_FIELD_PATH)
        kubernetes.use_config_map_as_env(task, SETTINGS_CONFIG_MAP, {k: k for k in SETTINGS_KEYS})
        kubernetes.use_secret_as_env(task, METADATA_CREDENTIALS, {k: k for k in SECRET_KEYS})
        kubernetes.use_secret_as_env(task, OBJECT_STORE_CREDENTIALS, {k: k for k in OBJECT_STORE_SECRET_KEYS})
