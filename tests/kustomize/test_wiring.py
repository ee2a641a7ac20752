"""The manifests agree with the kubetfx code that reads them.

* the ConfigMap's keys are the environment variables src/kubetfx/settings.py reads, and
  its values parse there;
* components/mysql's MariaDB is the store KUBETFX_METADATA names;
* the gpu overlay's accelerator profile loads with kubetfx.accelerators and fits the quota;
* the serving overlay serves what the Pusher publishes;
* what use_cluster_settings() compiles into a pipeline names these objects and keys.

No ``from __future__ import annotations`` here: it would turn the annotations of the
pipeline function below into strings, which kfp cannot read.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubetfx.components.evaluator import engine

from kubetfx import cluster, metrics, settings
from kubetfx.accelerators import KUBERNETES_GPU, AcceleratorProfile
from kubetfx.artifacts import tabular

KUSTOMIZE = Path(__file__).resolve().parents[2] / "kustomize"
PROFILE = KUSTOMIZE / "overlays/gpu/accelerator-profile.yaml"
SETTINGS_KEYS = {
    settings.METADATA_ENV,
    settings.PIPELINE_ROOT_ENV,
    settings.PUSH_ROOT_ENV,
    metrics.PUSHGATEWAY_ENV,  # where tasks push their metrics ("": off)
    metrics.TIMEOUT_ENV,
    tabular.BATCH_MB_ENV,  # input per batch of the data tasks ("": the default)
    engine.MAX_ROWS_ENV,  # the Evaluator's in-process limit before Beam ("": the default)
    *cluster.OBJECT_STORE_SETTINGS,  # the object store's endpoint and region (not secret)
}

Objects = list[dict[str, Any]]


def _named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_settings_configmap_keys_are_the_variables_kubetfx_reads(rendered: Objects, target: str) -> None:
    data = _named(rendered, "ConfigMap", "kubetfx-settings")["data"]
    assert set(data) == SETTINGS_KEYS, target
    assert settings.METADATA_PASSWORD_ENV not in data, "the password belongs in the Secret"


def test_settings_values_parse_with_kubetfx(
    rendered: Objects, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _named(rendered, "ConfigMap", "kubetfx-settings")["data"]
    monkeypatch.delenv(settings.METADATA_PASSWORD_ENV, raising=False)
    store = settings.parse_metadata_url(data[settings.METADATA_ENV])
    assert store.kind in ("mysql", "grpc"), f"{target}: a cluster store, not {store.kind}"
    assert store.password == "", f"{target}: no password in the ConfigMap's URL"
    monkeypatch.setenv(settings.PUSH_ROOT_ENV, data[settings.PUSH_ROOT_ENV])
    roots = settings.resolve_push_roots()
    assert roots == [r.strip() for r in data[settings.PUSH_ROOT_ENV].split(",")], "no trailing '/'"
    assert all("://" in r for r in roots), "pods have no shared local disk: object-store roots"
    assert (
        settings.resolve_pipeline_root(data[settings.PIPELINE_ROOT_ENV]) == data[settings.PIPELINE_ROOT_ENV]
    )
    # The memory bounds, as shipped (empty), read as their defaults.
    monkeypatch.setenv(tabular.BATCH_MB_ENV, data[tabular.BATCH_MB_ENV])
    monkeypatch.setenv(engine.MAX_ROWS_ENV, data[engine.MAX_ROWS_ENV])
    assert tabular.batch_bytes() == tabular.DEFAULT_BATCH_MB * 2**20
    assert engine.max_rows() == engine.DEFAULT_MAX_ROWS


@pytest.mark.parametrize("target", ["base+mysql", "serving+mysql", "example"])
def test_mysql_component_is_the_store_kubetfx_metadata_names(
    build: Callable[[str], Objects], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = build(target)
    url = _named(objects, "ConfigMap", "kubetfx-settings")["data"][settings.METADATA_ENV]
    monkeypatch.delenv(settings.METADATA_PASSWORD_ENV, raising=False)
    store = settings.parse_metadata_url(url)
    service = _named(objects, "Service", "kubetfx-metadata-db")
    statefulset = _named(objects, "StatefulSet", "kubetfx-metadata-db")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}

    assert (store.kind, store.host, store.port) == ("mysql", service["metadata"]["name"], 3306)
    assert env["MARIADB_DATABASE"]["value"] == store.database
    assert env["MARIADB_USER"]["value"] == store.user
    # The user's password is the one pipeline pods get as KUBETFX_METADATA_PASSWORD.
    assert env["MARIADB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kubetfx-metadata",
        "key": settings.METADATA_PASSWORD_ENV,
    }
    assert env["MARIADB_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] != "kubetfx-metadata"
    assert all("value" not in e for n, e in env.items() if "PASSWORD" in n)


def test_accelerator_profile_loads_with_kubetfx_and_fits_the_quota(build: Callable[[str], Objects]) -> None:
    profile = AcceleratorProfile.load(PROFILE)
    assert profile.target == "kubeflow"
    assert profile.node_selector and profile.toleration is not None
    assert profile.toleration.key == KUBERNETES_GPU

    objects = build("overlays/gpu")
    quota = _named(objects, "ResourceQuota", "kubetfx-gpu")["spec"]["hard"]
    assert set(quota) == {f"requests.{KUBERNETES_GPU}"}
    assert profile.count <= int(quota[f"requests.{KUBERNETES_GPU}"])

    published = _named(objects, "ConfigMap", "kubetfx-accelerator-profile")["data"]
    assert published == {PROFILE.name: PROFILE.read_text()}


def test_inference_service_serves_what_the_pusher_publishes(build: Callable[[str], Objects]) -> None:
    from kubetfx.serving.inferenceservice import served_version

    objects = build("overlays/serving")
    first_root = _named(objects, "ConfigMap", "kubetfx-settings")["data"][settings.PUSH_ROOT_ENV]
    first_root = first_root.split(",")[0].strip()
    isvc = _named(objects, "InferenceService", "penguins")
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    # The Pusher writes <root>/<model_name>/<version>/; one version folder is mounted as
    # that version under TF Serving's base path /mnt/models, and KServe names the model
    # after the InferenceService.
    [mount] = predictor["storageUris"]
    version = served_version(isvc)
    assert version is not None
    assert mount == {
        "uri": f"{first_root}/{isvc['metadata']['name']}/{version}",
        "mountPath": f"/mnt/models/{version}",
    }
    assert "storageUri" not in model, "a whole-model storageUri would serve the newest version, pinned or not"
    assert predictor["labels"]["kubetfx.dev/model-version"] == str(version)
    assert model["modelFormat"]["name"] == "tensorflow"
    # No fixed canary share: `kubetfx rollout` steps it, in Serverless mode.
    assert "canaryTrafficPercent" not in predictor
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    account = _named(objects, "ServiceAccount", predictor["serviceAccountName"])
    assert account["secrets"] == [{"name": "kubetfx-serving-storage"}]


def test_use_cluster_settings_compiles_to_names_these_manifests_provide(
    build: Callable[[str], Objects], tmp_path: Path
) -> None:
    """What kustomize/README.md tells a pipeline author to write (use_cluster_settings()
    and an accelerator profile), compiled with the kfp-kubernetes in this environment: the
    ConfigMap and its keys exist in the build, the Secrets and keys in secret.example.yaml."""
    from kfp import compiler, dsl
    from kubetfx.components import trainer

    profile = AcceleratorProfile.load(PROFILE)

    @dsl.pipeline(name="wiring")
    def wiring(examples_uri: str = "x"):
        data = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
        task = trainer(examples=data.output, schema=data.output, statistics=data.output, label_key="y")
        profile.apply(task)
        cluster.use_cluster_settings()

    path = tmp_path / "wiring.yaml"
    compiler.Compiler().compile(wiring, str(path))
    _, platform = yaml.safe_load_all(path.read_text())
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-trainer"]

    (config_map,) = config["configMapAsEnv"]
    data = _named(build("overlays/gpu"), "ConfigMap", config_map["configMapName"])["data"]
    assert {kv["configMapKey"] for kv in config_map["keyToEnv"]} == set(data)
    examples = {
        secret["metadata"]["name"]: set(secret["stringData"])
        for example in KUSTOMIZE.rglob("secret.example.yaml")
        for secret in yaml.safe_load_all(example.read_text())
    }
    wired = {s["secretName"]: {kv["secretKey"] for kv in s["keyToEnv"]} for s in config["secretAsEnv"]}
    assert wired == {
        "kubetfx-metadata": {settings.METADATA_PASSWORD_ENV},
        "kubetfx-object-store": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    }
    for name, keys in wired.items():
        assert examples[name] == keys, name
    assert config["nodeSelector"]["labels"] == profile.node_selector
    assert config["tolerations"][0]["key"] == KUBERNETES_GPU


def test_kfp_kubernetes_has_no_security_context_call() -> None:
    """kustomize/README.md says pipeline pods' securityContext cannot be set from the SDK."""
    from kfp import kubernetes

    public = [name.lower() for name in dir(kubernetes) if not name.startswith("_")]
    assert not [n for n in public if "security" in n or "run_as" in n or "privilege" in n]


def test_the_pipeline_runner_may_do_what_the_deployer_does(build: Callable[[str], Objects]) -> None:
    from kubetfx.serving.rollout import KServeBackend

    objects = build("overlays/serving")
    role = _named(objects, "Role", "kubetfx-deployer")
    [rule] = role["rules"]
    assert rule["apiGroups"] == [KServeBackend.GROUP] and rule["resources"] == [KServeBackend.PLURAL]
    # get (revisions, the version served), create (first deployment), patch (each step).
    assert sorted(rule["verbs"]) == ["create", "get", "patch"]
    binding = _named(objects, "RoleBinding", "kubetfx-deployer")
    assert binding["roleRef"]["name"] == "kubetfx-deployer"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubetfx-pipeline-runner"}]
