"""The executor input the KFP launcher hands a task, and what the task hands back.

The JSON shapes (as TypedDicts) of the pieces the local runner reads and writes: the
executor input (input values and artifacts, output paths and URIs), and the container
spec of a compiled task; how the runner builds an executor input for a task, and reads
its output parameters and artifacts afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict

from kubetfx import storage
from kubetfx.local.ir import ComponentSpec, Values
from kubetfx.local.results import Artifact, Artifacts, RuntimeArtifact


class ArtifactList(TypedDict):
    artifacts: list[RuntimeArtifact]


class OutputParameter(TypedDict):
    outputFile: str


class Inputs(TypedDict):
    parameterValues: dict[str, Any]
    artifacts: dict[str, ArtifactList]


class Outputs(TypedDict):
    parameters: dict[str, OutputParameter]
    artifacts: dict[str, ArtifactList]
    outputFile: str


class ExecutorInput(TypedDict):
    """What ``--executor_input`` carries (KFP's ``ExecutorInput`` message as JSON)."""

    inputs: Inputs
    outputs: Outputs


class ContainerSpec(TypedDict, total=False):
    """A compiled task's container (``deploymentSpec.executors.*.container``)."""

    image: str
    command: list[str]
    args: list[str]
    env: list[dict[str, str]]


class Paths(TypedDict):
    """Where one attempt's outputs go: the artifacts' root URI, the parameter files'
    folder and the executor output file."""

    root: str
    parameters: str
    output_file: str


def build(component: ComponentSpec, params: Values, artifacts: Artifacts, paths: Paths) -> ExecutorInput:
    """The executor input of a task of ``component`` with these inputs, its outputs at ``paths``."""
    values = {}
    declared = component.get("inputDefinitions", {}).get("parameters", {})
    for key, spec in declared.items():
        if key in params:
            values[key] = as_launched(params[key], spec.get("parameterType"))
        elif "defaultValue" in spec:
            values[key] = as_launched(spec["defaultValue"], spec.get("parameterType"))
    outputs = component.get("outputDefinitions", {})
    return {
        "inputs": {
            "parameterValues": values,
            "artifacts": {key: {"artifacts": [a.runtime() for a in arts]} for key, arts in artifacts.items()},
        },
        "outputs": {
            "parameters": {
                key: {"outputFile": os.path.join(paths["parameters"], key)}
                for key in outputs.get("parameters", {})
            },
            "artifacts": {
                key: {
                    "artifacts": [
                        {
                            "name": key,
                            "type": spec.get("artifactType", {}),
                            "uri": storage.join(paths["root"], key),
                            "metadata": {},
                        }
                    ]
                }
                for key, spec in outputs.get("artifacts", {}).items()
            },
            "outputFile": paths["output_file"],
        },
    }


def as_launched(value: Any, declared: str | None) -> Any:
    """A value as the KFP launcher hands it over: protobuf numbers are doubles, and the
    backend writes integral ones without a fraction, so ``1.0`` arrives as ``1``."""
    if declared == "NUMBER_DOUBLE":
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [as_launched(v, None) for v in value]
    if isinstance(value, dict):
        return {k: as_launched(v, None) for k, v in value.items()}
    return value


def read_json(path: Path | str) -> dict[str, Any]:
    """A JSON file a task wrote; empty if it did not write it (whole)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def output_parameters(executor_input: ExecutorInput, document: dict[str, Any]) -> dict[str, Any]:
    """The task's output parameters: from its executor output, else from their files."""
    values = dict(document.get("parameterValues", {}))
    for key, spec in executor_input["outputs"]["parameters"].items():
        path = spec["outputFile"]
        if key not in values and os.path.exists(path):
            text = Path(path).read_text()
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError:
                values[key] = text
    return values


def output_artifacts(executor_input: ExecutorInput, records: dict[str, list[Any]]) -> Artifacts:
    """The task's output artifacts (lineage records, at their final URIs) as handed on,
    typed as the component declares them."""
    produced: Artifacts = {}
    for key, found in records.items():
        declared = executor_input["outputs"]["artifacts"][key]["artifacts"][0]["type"]
        produced[key] = [
            Artifact(
                key=key,
                uri=r.uri,
                schema_title=declared.get("schemaTitle", r.schema_title),
                schema_version=declared.get("schemaVersion", "0.0.1"),
                metadata=r.metadata,
            )
            for r in found
        ]
    return produced


def lineage_record(artifact: Artifact) -> Any:
    """``artifact`` as kubetfx.lineage records it."""
    from kubetfx.lineage.record import ArtifactRecord

    return ArtifactRecord(
        key=artifact.key,
        uri=artifact.uri,
        schema_title=artifact.schema_title,
        metadata=artifact.metadata,
        id=artifact.id,
    )


def lineage_records(artifacts: Artifacts) -> dict[str, list[Any]]:
    """Every artifact of ``artifacts`` as kubetfx.lineage records it, by key."""
    return {key: [lineage_record(a) for a in arts] for key, arts in artifacts.items()}


TASK_MODULE_MARK = "-m kubetfx.task"


def runs_kubetfx_task(container: ContainerSpec) -> bool:
    """Whether the task's command runs the kubetfx task wrapper (which records its own
    lineage and stages its own outputs), not a plain KFP executor."""
    command = [*container.get("command", []), *container.get("args", [])]
    return any(TASK_MODULE_MARK in part for part in command)
