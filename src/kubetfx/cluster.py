"""What a compiled pipeline's tasks need in a Kubeflow namespace, set at compile time.

In a cluster a task learns kubetfx's settings from the environment, like it does locally,
and the environment comes from the namespace (``kustomize/base``): the ConfigMap
``kubetfx-settings`` (pipeline root, metadata store address, allowed push root) and the
Secret ``kubetfx-metadata`` (the metadata store's password), and KFP's own Secret
``mlpipeline-minio-artifact`` (the object store's keys, as ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``: a task reads artifacts it is handed by URI, such as the
Evaluator's baseline model, itself; KFP creates that Secret in every namespace it runs
pipelines in). :func:`use_cluster_settings`,
called at the end of a pipeline function, wires every task to both through
kfp-kubernetes, so no setting and no secret ever travels as a pipeline parameter. The
local runner ignores this part of the compiled YAML (the runner's own environment applies).

GPU placement is the platform team's too: ``kubetfx compile --accelerator-profile FILE``
makes :func:`place_on_accelerator` apply that profile (``kubetfx.accelerators``) to the
tasks a pipeline marks as GPU tasks (the Trainer in the reference pipelines).
"""

from __future__ import annotations

from typing import Any

SETTINGS_CONFIG_MAP = "kubetfx-settings"
SETTINGS_KEYS = ("KUBETFX_METADATA", "KUBETFX_PIPELINE_ROOT", "KUBETFX_PUSH_ROOT")
METADATA_CREDENTIALS = "kubetfx-metadata"  # the name of the Kubernetes Secret object
SECRET_KEYS = ("KUBETFX_METADATA_PASSWORD",)
# KFP's artifact store credentials (backend/src/v2/config/env.go: minioArtifactSecretName).
OBJECT_STORE_CREDENTIALS = "mlpipeline-minio-artifact"
OBJECT_STORE_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}

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


def use_cluster_settings() -> None:
    """Give every task of the pipeline being defined kubetfx's ConfigMap and Secret as env,
    and the pipeline's name (``KUBETFX_PIPELINE_NAME``)."""
    from kfp import kubernetes
    from kfp.dsl import pipeline_context

    pipeline = pipeline_context.Pipeline.get_default_pipeline()
    if pipeline is None:
        raise RuntimeError("use_cluster_settings() is called inside a @dsl.pipeline function")
    for task in pipeline.tasks.values():
        if task.container_spec is None:  # an importer or a nested pipeline: no pod of its own
            continue
        # Lineage groups runs by the pipeline's name; no KFP placeholder carries it
        # ({{$.pipeline_job_name}} is the run's display name), so it is compiled in.
        task.set_env_variable("KUBETFX_PIPELINE_NAME", pipeline.name)
        kubernetes.use_config_map_as_env(task, SETTINGS_CONFIG_MAP, {k: k for k in SETTINGS_KEYS})
        kubernetes.use_secret_as_env(task, METADATA_CREDENTIALS, {k: k for k in SECRET_KEYS})
        kubernetes.use_secret_as_env(task, OBJECT_STORE_CREDENTIALS, dict(OBJECT_STORE_KEYS))
