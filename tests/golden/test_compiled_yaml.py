"""Checked-in component.yaml and pipeline.yaml files are what the Python sources compile to."""

from __future__ import annotations

import pytest

from kubetfx.compiling import render, targets

TARGETS = targets()


def test_every_component_and_pipeline_has_a_yaml() -> None:
    names = {path.parent.name for _, path, _ in TARGETS}
    assert {"example_gen", "training"} <= names


@pytest.mark.parametrize(("obj", "path", "source"), TARGETS, ids=[str(p.parent.name) for _, p, _ in TARGETS])
def test_checked_in_yaml_is_fresh(obj, path, source) -> None:
    assert path.exists(), f"{path} is missing; run `make compile`"
    assert render(obj, source) == path.read_text(), f"{path} is stale; run `make compile` and commit it"


def test_component_yaml_loads_with_plain_kfp() -> None:
    from kfp import components

    for _, path, source in TARGETS:
        if source == "component.py":
            loaded = components.load_component_from_file(str(path))
            assert loaded.component_spec.implementation.container.image.endswith(":0.1.0")
            command = " ".join(loaded.component_spec.implementation.container.command)
            assert "python3 -m kubetfx.task" in command and "KUBETFX_COMPONENT_VERSION=" in command


def test_pipeline_yaml_loads_back_and_validates_against_the_kfp_spec() -> None:
    import yaml
    from google.protobuf import json_format
    from kfp import components
    from kfp.kubernetes import kubernetes_executor_config_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    for _, path, source in TARGETS:
        if source != "pipeline.py":
            continue
        loaded = components.load_component_from_file(str(path))  # the kfp SDK reads it back
        assert loaded.pipeline_spec.pipeline_info.name.startswith("kubetfx-")
        ir, platform = list(yaml.safe_load_all(path.read_text()))
        # Strict parse: an unknown or mistyped field anywhere fails, as the backend would.
        spec = json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec())
        assert set(spec.deployment_spec["executors"]) == set(ir["deploymentSpec"]["executors"])
        platforms = json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for config in executors.values():
            json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
        assert "kubernetes" in platforms.platforms, path
