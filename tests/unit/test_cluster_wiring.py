"""Compiled pipelines carry what a Kubeflow namespace provides: kubetfx's ConfigMap and
Secret as env for every task, and GPU placement only when compiled with a profile."""

from pathlib import Path

import yaml

from kubetfx import cluster

REPO = Path(__file__).resolve().parents[2]


def _platform(path: Path) -> dict:
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_every_task_gets_settings_secrets_and_identity_from_the_namespace() -> None:
    for pipeline in ("training", "continuous_training"):
        path = REPO / f"pipelines/{pipeline}/pipeline.yaml"
        ir = next(yaml.safe_load_all(path.read_text()))
        executors = _platform(path)
        assert set(executors) == set(ir["deploymentSpec"]["executors"])  # every task, the pusher included
        tasks = _tasks_by_executor(ir)
        for name, config in executors.items():
            [config_map] = config["configMapAsEnv"]
            assert config_map["configMapName"] == "kubetfx-settings", name
            assert {e["envVar"] for e in config_map["keyToEnv"]} == set(cluster.SETTINGS_KEYS)
            secrets = {s["secretName"]: [e["envVar"] for e in s["keyToEnv"]] for s in config["secretAsEnv"]}
            assert secrets == {
                "kubetfx-metadata": ["KUBETFX_METADATA_PASSWORD"],
                "kubetfx-object-store": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            }, name
            # The run id from the label the KFP API server puts on every pod of a run.
            assert config["fieldPathAsEnv"] == [
                {"name": "KUBETFX_RUN_ID", "fieldPath": "metadata.labels['pipeline/runid']"}
            ]
            env = {e["name"]: e["value"] for e in ir["deploymentSpec"]["executors"][name]["container"]["env"]}
            assert env == {
                "KUBETFX_PIPELINE_NAME": ir["pipelineInfo"]["name"],
                "KUBETFX_TASK_NAME": tasks[name],
            }
            assert "nodeSelector" not in config and "tolerations" not in config  # CPU by default


def _tasks_by_executor(ir: dict) -> dict[str, str]:
    """executor label -> task name, over every DAG of the pipeline."""
    found = {}
    for component in [ir["root"], *ir["components"].values()]:
        for task_name, task in component.get("dag", {}).get("tasks", {}).items():
            executor = ir["components"][task["componentRef"]["name"]].get("executorLabel")
            if executor:
                found[executor] = task_name
    return found


def test_identity_never_travels_as_an_input_parameter() -> None:
    """KFP's cache key holds every input value: a run id there would miss on every run."""
    for pipeline in ("training", "continuous_training"):
        text = (REPO / f"pipelines/{pipeline}/pipeline.yaml").read_text()
        for placeholder in ("{{$.pipeline_job_uuid}}", "{{$.pipeline_job_name}}", "{{$.pipeline_task_name}}"):
            assert placeholder not in text, (pipeline, placeholder)


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
