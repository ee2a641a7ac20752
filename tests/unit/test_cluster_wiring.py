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
    """KFP's cache key holds every input value: a run id there would miss on every run. The
    placeholders appear only in the command, which the key holds as compiled text."""
    for pipeline in ("training", "continuous_training"):
        text = (REPO / f"pipelines/{pipeline}/pipeline.yaml").read_text()
        ir = next(yaml.safe_load_all(text))
        for component in [ir["root"], *ir["components"].values()]:
            for task in component.get("dag", {}).get("tasks", {}).values():
                inputs = yaml.safe_dump(task.get("inputs", {}))
                assert "{{$.pipeline_" not in inputs, (pipeline, task["taskInfo"]["name"])
        for executor in ir["deploymentSpec"]["executors"].values():
            command = " ".join(executor["container"]["command"])
            assert "--kubetfx_run_id '{{$.pipeline_job_uuid}}'" in command
