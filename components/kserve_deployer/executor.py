"""kserve_deployer's executor: point a KServe InferenceService at the pushed version.

* No InferenceService of the model yet: create it pinned to the version (nothing to
  compare a canary with): ``deployed``.
* It already serves that version: ``unchanged``.
* It serves another version: a stepped canary rollout
  (:func:`kubetfx.serving.rollout.run_rollout` with the KServe backend): ``promoted`` or
  ``rolled_back``, recorded in lineage as a ``kubetfx.Rollout``.
* The Pusher published nothing (not blessed, too slow): ``skipped``.

Talks to the Kubernetes API with the ``kubernetes`` client (in-cluster configuration in a
pipeline pod); the pipeline's ServiceAccount needs get/create/patch on
``inferenceservices.serving.kserve.io`` (``kustomize/overlays/serving`` grants it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kubetfx.errors import ParameterError
from kubetfx.lineage.record import truthy
from kubetfx.serving.inferenceservice import inference_service, served_version, to_yaml
from kubetfx.serving.rollout import KServeBackend, RolloutSettings

GROUP, VERSION, PLURAL = KServeBackend.GROUP, KServeBackend.VERSION, KServeBackend.PLURAL
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
MANIFEST_FILE = "inferenceservice.yaml"


@dataclass
class DeployResult:
    """What the deployer did."""

    state: str  # deployed | unchanged | promoted | rolled_back | skipped
    model_name: str
    version: int
    stable_version: int = 0
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "model_name": self.model_name,
            "version": self.version,
            "stable_version": self.stable_version,
            "reason": self.reason,
            "steps": self.steps,
        }


def push_root_of(destination: str, model_name: str, version: int) -> str:
    """``<push root>/<model>/<version>`` (the Pusher's ``destination``) -> ``<push root>``."""
    suffix = f"/{model_name}/{version}"
    trimmed = destination.rstrip("/")
    if not trimmed.endswith(suffix):
        raise ParameterError(f"pushed destination {destination!r} does not end in {suffix!r}")
    return trimmed[: -len(suffix)]


def current_namespace(namespace: str) -> str:
    """``namespace``, else the pod's own (the service account's namespace file)."""
    if namespace:
        return namespace
    try:
        with open(NAMESPACE_FILE) as f:
            return f.read().strip()
    except OSError as err:
        raise ParameterError("no namespace given and not running in a Kubernetes pod") from err


def _kubernetes_api() -> Any:
    from kubernetes import client, config  # type: ignore[import-untyped]

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def deploy(
    pushed: dict[str, Any],
    out_dir: str,
    *,
    namespace: str,
    prometheus_url: str,
    settings: RolloutSettings,
    store: Any = None,
    api: Any = None,
    say: Any = print,
) -> DeployResult:
    """Deploy or roll out the version the PushedModel ``pushed`` (its metadata) names;
    the InferenceService it aims at is written to ``out_dir/inferenceservice.yaml``."""
    model = str(pushed.get("model_name", ""))
    version = int(pushed.get("version") or 0)
    if not truthy(pushed.get("pushed")) or not version:
        return DeployResult(
            "skipped", model, version, reason=f"nothing was pushed: {pushed.get('reason', '')}"
        )
    root = push_root_of(str(pushed.get("destination", "")), model, version)
    target = inference_service(model, version, root, namespace=namespace)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, MANIFEST_FILE), "w") as f:
        f.write(to_yaml(target))
    api = api or _kubernetes_api()
    from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

    try:
        live = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, model)
    except ApiException as err:
        if err.status != 404:
            raise
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, target)
        say(f"kserve_deployer: created InferenceService {namespace}/{model} serving version {version}")
        return DeployResult(
            "deployed", model, version, reason="first deployment: no stable version to compare"
        )
    stable = served_version(live)
    if stable == version:
        return DeployResult("unchanged", model, version, version, reason=f"already serving version {version}")
    if stable is None:
        raise ParameterError(
            f"InferenceService {namespace}/{model} is not pinned to a version (no storageUris mount "
            "/mnt/models/<version>): apply kubetfx's manifest once, then roll out"
        )
    if not prometheus_url:
        raise ParameterError(
            "a canary rollout needs prometheus_url (the Prometheus scraping Knative's queue-proxy)"
        )
    from kubetfx.serving.prometheus import Prometheus
    from kubetfx.serving.rollout import run_rollout

    backend = KServeBackend(model, namespace, root, version, api=api)
    backend.start(list(settings.steps)[0])
    rollout = run_rollout(
        backend,
        Prometheus(prometheus_url),
        model_name=model,
        canary_version=version,
        stable_version=stable,
        settings=settings,
        store=store,
        say=say,
    )
    return DeployResult(
        rollout.state, model, version, stable, rollout.reason, [s.__dict__ for s in rollout.steps]
    )
