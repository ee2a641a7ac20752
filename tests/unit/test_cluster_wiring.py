"""Compiled pipelines carry what a Kubeflow namespace provides: kubetfx's ConfigMap and
Secret as env for every task, and GPU placement only when compiled with a profile."""

from pathlib import Path

import yaml

from kubetfx import cluster

REPO = Path(__file__).resolve().parents[2]


def _platform(path: Path) -> dict:
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_every_task_gets_settings_and_secret_from_the_namespace() -> None:
    spec = yaml.safe_load_all((REPO / "pipelines/training/pipeline.yaml").read_text())
    ir = next(spec)
    executors = _platform(REPO / "pipelines/training/pipeline.yaml")
    assert set(executors) == set(ir["deploymentSpec"]["executors"])  # every task, the pusher included
    for name, config in executors.items():
        [config_map] = config["configMapAsEnv"]
        assert config_map["configMapName"] == "kubetfx-settings", name
        assert {e["envVar"] for e in config_map["keyToEnv"]} == set(cluster.SETTINGS_KEYS)
        secret, store = config["secretAsEnv"]
        assert secret["secretName"] == "kubetfx-metadata"
        assert [e["envVar"] for e in secret["keyToEnv"]] == ["KUBETFX_METADATA_PASSWORD"]
        # KFP's own object-store Secret: tasks read artifacts handed to them by URI.
        assert store["secretName"] == "mlpipeline-minio-artifact"
        assert {e["secretKey"]: e["envVar"] for e in store["keyToEnv"]} == {
            "accesskey": "AWS_ACCESS_KEY_ID",
            "secretkey": "AWS_SECRET_ACCESS_KEY",
        }
        assert "nodeSelector" not in config and "tolerations" not in config  # CPU by default


def test_the_names_match_the_kustomize_base() -> None:
    base = REPO / "kustomize/base/kubetfx-configmap.yaml"
    config_map = next(d for d in yaml.safe_load_all(base.read_text()) if d and d.get("kind") == "ConfigMap")
    assert config_map["metadata"]["name"] == cluster.SETTINGS_CONFIG_MAP
    assert set(config_map["data"]) == set(cluster.SETTINGS_KEYS)
    assert cluster.METADATA_CREDENTIALS in (REPO / "kustomize/base/secret.example.yaml").read_text()


def test_an_accelerator_profile_places_only_the_trainer(tmp_path: Path, cli) -> None:
    out = tmp_path / "gpu.yaml"
    profile = REPO / "kustomize/overlays/gpu/accelerator-profile.yaml"
    result = cli("compile", "training", "--accelerator-profile", str(profile), "-o", str(out))
    assert result.returncode == 0, result.stderr
    placed = {name for name, config in _platform(out).items() if "nodeSelector" in config}
    assert placed == {"exec-trainer"}
    ir = next(yaml.safe_load_all(out.read_text()))
    assert (
        ir["deploymentSpec"]["executors"]["exec-trainer"]["container"]["resources"]["accelerator"]["count"]
        == "1"
    )
    # The checked-in YAML was not touched, and a bad call is one line.
    assert "nodeSelector" not in (REPO / "pipelines/training/pipeline.yaml").read_text()
    bad = cli("compile", "nosuch", "-o", str(out))
    assert bad.returncode == 2 and "no pipeline 'nosuch'" in bad.stderr
