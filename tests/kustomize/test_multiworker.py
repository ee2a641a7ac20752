"""The multiworker overlay: a Kubeflow Training Operator TFJob running the Trainer's command.

Validated without a cluster: the TFJob against the openAPIV3Schema of the operator's CRD
(schemas/tfjob-v1.yaml, trimmed by schemas/trim_tfjob_crd.py, strict: unknown fields are
errors) and the rules of its validating webhook; each replica's pod template against the
Kubernetes schemas as a PodTemplate; the rest of what the overlay renders against the
Kubernetes schemas. What this does not prove: that a cluster's operator schedules it (the
workers' training itself is proved across processes by tests/training).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import KUSTOMIZE, crd_validator, kustomize_build

KUBERNETES_VERSION = "1.37.0"  # the kubectl the tests build with
SCHEMA = Path(__file__).with_name("schemas") / "tfjob-v1.yaml"
OVERLAY = KUSTOMIZE / "overlays" / "multiworker"
# The operator's webhook (pkg/webhooks/tensorflow in training-operator v1.9.0).
REPLICA_TYPES = {"PS", "Worker", "Chief", "Master", "Evaluator"}


def tfjob_errors(job: dict[str, Any]) -> list[str]:
    """Errors of a TFJob: the CRD's schema, the operator's webhook, each pod template."""
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in crd_validator(SCHEMA).iter_errors(job)
    ]
    if job.get("apiVersion") != "kubeflow.org/v1":
        errors.append(f"apiVersion {job.get('apiVersion')!r} is not kubeflow.org/v1")
    specs = job.get("spec", {}).get("tfReplicaSpecs") or {}
    if not specs:
        errors.append("spec.tfReplicaSpecs: must be required")
    if sum(kind in ("Chief", "Master") for kind in specs) > 1:
        errors.append("spec.tfReplicaSpecs: must not have more than 1 Chief or Master role")
    for kind, spec in specs.items():
        if kind not in REPLICA_TYPES:
            errors.append(f"spec.tfReplicaSpecs.{kind}: not a TFJob replica type")
        containers = spec.get("template", {}).get("spec", {}).get("containers", [])
        if not containers or not all(c.get("image") for c in containers):
            errors.append(f"spec.tfReplicaSpecs.{kind}: every container needs an image")
        if not any(c.get("name") == "tensorflow" for c in containers):
            errors.append(f"spec.tfReplicaSpecs.{kind}: no container named tensorflow")
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "t"},
            "template": spec["template"],
        }
        try:
            kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(
                f"spec.tfReplicaSpecs.{kind}.template.{'.'.join(map(str, err.path))}: {err.message}"
            )
    return errors


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize_build(OVERLAY)


def _job(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = [o for o in rendered if o["kind"] == "TFJob"]
    return job


def test_the_tfjob_is_valid_for_the_operators_crd_and_webhook(rendered) -> None:
    assert tfjob_errors(_job(rendered)) == []
    for obj in rendered:
        if obj["kind"] != "TFJob":
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_check_catches_what_the_operator_refuses(rendered) -> None:
    job = yaml.safe_load(yaml.safe_dump(_job(rendered)))
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    worker["replicas"] = "two"
    worker["template"]["spec"]["containers"][0]["name"] = "trainer"
    worker["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes?"
    worker["template"]["spec"]["containres"] = []
    job["spec"]["tfReplicaSpecs"]["Workers"] = worker
    job["spec"]["runPolicy"]["cleanupPolicy"] = "All"
    errors = "\n".join(tfjob_errors(job))
    assert "replicas: 'two' is not of type 'integer'" in errors
    assert "no container named tensorflow" in errors
    assert "Workers: not a TFJob replica type" in errors
    assert "cleanupPolicy" in errors and "containres" in errors


def test_the_workers_run_the_trainers_command_with_the_namespaces_settings(rendered) -> None:
    from kubetfx.images import RUNTIME_IMAGE

    job = _job(rendered)
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] >= 2
    pod = worker["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == RUNTIME_IMAGE
    assert container["command"] == ["python", "-m", "kubetfx.components.trainer"]
    assert importlib.util.find_spec("kubetfx.components.trainer.__main__") is not None
    assert {"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"} in container["ports"]
    # Every $(VAR) in the arguments comes from the job's ConfigMap, which the overlay renders.
    names = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ConfigMap"}
    job_settings = names["kubetfx-trainer-job"]["data"]
    for arg in container["args"]:
        variable = arg.split("$(", 1)[1].rstrip(")")
        assert variable in job_settings, arg
    refs = [e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]]
    assert refs == ["kubetfx-settings", "kubetfx-trainer-job", "kubetfx-object-store"]
    assert "kubetfx-settings" in names
    accounts = {o["metadata"]["name"] for o in rendered if o["kind"] == "ServiceAccount"}
    assert pod["serviceAccountName"] in accounts
    # The pods are not selected by the base's default-deny policy: the workers talk to each other.
    assert "app.kubernetes.io/part-of" not in worker["template"]["metadata"]["labels"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_the_schema_names_its_source() -> None:
    header = "\n".join(line for line in SCHEMA.read_text().splitlines() if line.startswith("#"))
    assert "kubeflow/training-operator at tag v1.9.0 (6f74c7f6b2ed6c27aabd82d0a316b23f0646059c)" in header
    schema = yaml.safe_load(SCHEMA.read_text())
    replica = schema["properties"]["spec"]["properties"]["tfReplicaSpecs"]["additionalProperties"]
    assert replica["properties"]["template"]["x-kubetfx-trimmed"] is True
    assert set(replica["properties"]) == {"replicas", "restartPolicy", "template"}
