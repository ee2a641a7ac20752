"""KServe InferenceService manifests that pin a model to one exact pushed version.

(Not named ``kserve.py``: the model-server script beside it runs with this folder first on
``sys.path`` and imports KServe's own ``kserve`` package.)

The Pusher publishes ``<push root>/<model>/<version>/`` (a SavedModel). KServe's
TensorFlow runtime (TF Serving, ``--model_base_path=/mnt/models``) serves the highest
*numeric* folder under its base path, and KServe's storage initializer downloads
``storageUri`` into ``/mnt/models``. A ``storageUri`` on the model's whole folder therefore
serves whatever is newest when a pod starts, canary or not; a ``storageUri`` on the
version folder puts ``saved_model.pb`` directly in ``/mnt/models``, where TF Serving finds
no version at all. So the version folder is mounted *as its own version*, with the
predictor's ``storageUris`` (KServe 0.16 and later)::

    storageUris:
      - uri: <push root>/<model>/<version>
        mountPath: /mnt/models/<version>

TF Serving then sees exactly one version, the pinned one, whichever pod starts when.
Changing the version is a change to the predictor spec, so KServe starts a new revision:
in Serverless (Knative) mode ``canaryTrafficPercent`` splits traffic between the last
rolled-out revision (the stable version) and the new one (the canary).

Nothing here talks to a cluster; :func:`inference_service` returns a plain dict and
:func:`to_yaml` renders it. ``tests/kustomize`` validates what it returns against KServe's
published InferenceService CRD schema.
"""

from __future__ import annotations

import copy
from typing import Any

from kubetfx.errors import ParameterError
from kubetfx.pushing import check_model_name

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
MODEL_MOUNT = "/mnt/models"
ROLLOUT_ANNOTATION = "kubetfx.dev/rollout"
VERSION_LABEL = "kubetfx.dev/model-version"
# KServe's deployment-mode annotation (0.15+ writes "Serverless", "RawDeployment" or,
# from 0.17, "Standard" for what was RawDeployment).
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"

# The TF Serving release matching the TensorFlow (2.16) kubetfx trains with.
DEFAULT_RUNTIME_VERSION = "2.16.1"


def version_uri(push_root: str, model_name: str, version: int) -> str:
    """``<push root>/<model>/<version>``: where the Pusher published that version."""
    check_model_name(model_name)
    if int(version) < 1:
        raise ParameterError(f"model version must be a positive integer, not {version!r}")
    if not push_root or push_root.endswith("/"):
        raise ParameterError(f"push root {push_root!r} must be non-empty and have no trailing '/'")
    return f"{push_root}/{model_name}/{int(version)}"


def _security_context() -> dict[str, Any]:
    # Container-level only: Knative refuses a pod-level securityContext unless its
    # kubernetes.podspec-securitycontext feature is on.
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def inference_service(
    model_name: str,
    version: int,
    push_root: str,
    *,
    canary_traffic_percent: int | None = None,
    namespace: str | None = None,
    service_account: str = "kubetfx-serving",
    runtime_version: str = DEFAULT_RUNTIME_VERSION,
    min_replicas: int = 1,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The InferenceService serving exactly ``version`` of ``model_name``.

    Args:
        model_name: The InferenceService's name and TF Serving's model name.
        version: The pushed version to serve; its folder is mounted as version ``version``.
        push_root: The root the Pusher published under (first ``KUBETFX_PUSH_ROOT``).
        canary_traffic_percent: None: the new revision gets all traffic once ready (the
            first deployment, or a promotion). 0-100: KServe Serverless mode sends that
            share to the new revision and the rest to the last rolled-out one.
        namespace: Set ``metadata.namespace`` (None: left to ``kubectl -n``/kustomize).
    """
    check_model_name(model_name)
    if canary_traffic_percent is not None and not 0 <= int(canary_traffic_percent) <= 100:
        raise ParameterError(f"canaryTrafficPercent must be within 0-100, not {canary_traffic_percent!r}")
    uri = version_uri(push_root, model_name, version)
    metadata: dict[str, Any] = {
        "name": model_name,
        "labels": {
            "app.kubernetes.io/name": model_name,
            "app.kubernetes.io/component": "model-server",
        },
        "annotations": {DEPLOYMENT_MODE_ANNOTATION: "Serverless"},
    }
    if namespace:
        metadata["namespace"] = namespace
    predictor: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "minReplicas": int(min_replicas),
        # Copied onto the revision's pods: which version a pod serves, for people and queries.
        "labels": {VERSION_LABEL: str(int(version))},
        "annotations": {ROLLOUT_ANNOTATION: str(int(version))},
        "storageUris": [{"uri": uri, "mountPath": f"{MODEL_MOUNT}/{int(version)}"}],
        "model": {
            "modelFormat": {"name": "tensorflow", "version": "2"},
            "runtimeVersion": runtime_version,
            "securityContext": _security_context(),
            "resources": copy.deepcopy(resources)
            or {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
        },
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = int(canary_traffic_percent)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": {"predictor": predictor}}


def served_version(isvc: dict[str, Any]) -> int | None:
    """The version an InferenceService's spec pins (from its ``storageUris`` mount), or None."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    for entry in predictor.get("storageUris") or []:
        tail = str(entry.get("mountPath", "")).rstrip("/").rsplit("/", 1)[-1]
        if tail.isdigit():
            return int(tail)
    return None


def to_yaml(isvc: dict[str, Any]) -> str:
    """The manifest as YAML (``kubectl apply -f`` takes it)."""
    import yaml

    return yaml.safe_dump(isvc, sort_keys=False)
