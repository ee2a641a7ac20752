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
