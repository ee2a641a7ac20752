"""Loading and checking a compiled KFP pipeline before it runs on this machine.

Everything the local runner cannot do is found here, so a run never stops halfway
on an unsupported construct. Reading the file and typing its parameters is shared with
``kubetfx submit``: :mod:`kubetfx.pipeline_file`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubetfx import pipeline_file
from kubetfx.errors import PipelineSpecError, UnsupportedLocallyError
from kubetfx.local import cel

_SELECTOR = re.compile(r"""^parseJson\(string_value\)((?:\[(?:"[^"]*"|'[^']*'|\d+)\])*)$""")
_SELECTOR_STEP = re.compile(r"""\[(?:"([^"]*)"|'([^']*)'|(\d+))\]""")


@dataclass
class PipelineDoc:
    """A compiled pipeline: its IR as a dict, plus the platform part (ignored locally)."""

    path: str
    spec: dict[str, Any]
    platform: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec["pipelineInfo"]["name"]

    @property
    def components(self) -> dict[str, Any]:
        return self.spec.get("components", {})

    @property
    def executors(self) -> dict[str, Any]:
        return self.spec.get("deploymentSpec", {}).get("executors", {})

    @property
    def root(self) -> dict[str, Any]:
        return self.spec["root"]

    def root_parameters(self) -> dict[str, dict[str, Any]]:
        """The pipeline's own parameters and their declarations."""
        return pipeline_file.declared_parameters(self.spec)


def load(path: str | Path) -> PipelineDoc:
    """Read, validate and check a compiled pipeline file; raise before any task runs."""
    read = pipeline_file.read(path)
    text = read.path.read_text()
    _validate_proto(read.path, read.spec, text)
    doc = PipelineDoc(path=str(path), spec=read.spec, platform=read.platform)
    if doc.platform:
        doc.notes.append(
            "Kubernetes settings in the platform spec (GPU placement, secrets, volumes) "
            "apply in a cluster only and are ignored by the local runner"
        )
    _check_component(doc, doc.root, "root")
    return doc


_KFP_IMPORT_LOCK = threading.Lock()


def import_kfp_runtime() -> None:
    """Import the ``kfp`` package as a KFP task does (``_KFP_RUNTIME=true``): without what
    ``kfp/__init__`` adds for authoring (``kfp.client``, which pulls in the Kubernetes
    client, jsonschema and a grammar compiler: 2-3 s of a cold run's start). The runner
    needs only the pipeline spec's protos and KFP's placeholder code; an explicit
    ``from kfp import dsl, compiler, client`` still imports those in full later."""
    import os
    import sys

    # One thread at a time (the runner's task threads call it too): the variable is set
    # for the import only, and a thread must not see kfp half imported.
    with _KFP_IMPORT_LOCK:
        if "kfp" in sys.modules:
            return
        before = os.environ.get("_KFP_RUNTIME")
        os.environ["_KFP_RUNTIME"] = "true"
        try:
            import kfp
        finally:
            if before is None:
                del os.environ["_KFP_RUNTIME"]
            else:
                os.environ["_KFP_RUNTIME"] = before
        kfp.__getattr__ = _kfp_authoring_name  # ``kfp.dsl``, ``kfp.Client``... on first use


def _kfp_authoring_name(name: str) -> Any:
    """What ``kfp/__init__`` binds for authoring, imported when first asked for (so a
    notebook that ran a pipeline first can still write ``kfp.Client()`` or ``kfp.dsl``)."""
    import importlib

    if name == "Client":
        return importlib.import_module("kfp.client").Client
    if name.startswith("_"):
        raise AttributeError(f"module 'kfp' has no attribute {name!r}")
    try:  # kfp.dsl, kfp.components, kfp.client, kfp.compiler...: its subpackages
        return importlib.import_module(f"kfp.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module 'kfp' has no attribute {name!r}") from None


def _validate_proto(path: Path, spec: dict[str, Any], text: str) -> None:
    from google.protobuf import json_format

    import_kfp_runtime()
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as err:
        raise _spec_error(path, text, str(err)) from None


def _spec_error(path: Path, text: str, message: str) -> PipelineSpecError:
    """protobuf's nested "Failed to parse X field: ..." as ``FILE:LINE:COL: FIELD: reason``."""
    first = message.strip().splitlines()[0] if message.strip() else message
    chain = re.findall(r"Failed to parse (\w+) field: ", first)
    reason = re.sub(r"^(Failed to parse \w+ field: )+", "", first).rstrip(". ")
    steps = chain
    at = re.search(r' at "?PipelineSpec\.?([^"\s]*)"?$', reason)
    if at:
        reason = reason[: at.start()]
        steps = re.findall(r"[^.\[\]]+", at.group(1)) or steps
    unknown = re.search(r'has no field named "([^"]+)"', reason)
    if unknown:
        steps = [*(steps if at and at.group(1) else []), unknown.group(1)]
    keys, where = _locate(text, steps)
    field_name = f" {'.'.join(keys or steps)}:" if steps else ""
    return PipelineSpecError(
        f"{path}{where}:{field_name} {reason}; not a valid KFP pipeline spec: compile the pipeline "
        "function with kfp's compiler instead of editing the YAML"
    )


def _locate(text: str, steps: list[str]) -> tuple[list[str], str]:
    """The keys walked to ``steps`` in the first YAML document (empty unless all were found), and
    the ``:LINE:COL`` of the deepest one found."""
    try:
        node = next(yaml.compose_all(text), None)
    except yaml.YAMLError:
        return [], ""
    keys: list[str] = []
    mark = None
    for step in steps:
        if not isinstance(node, yaml.MappingNode):
            break
        found, walked = _child(node, step), [step]
        if found is None:  # a map key protobuf does not name (a task's name): one level down
            for key, value in node.value:
                inner = _child(value, step) if isinstance(value, yaml.MappingNode) else None
                if inner is not None:
                    found, walked = inner, [key.value, step]
                    break
        if found is None:
            break
        node, mark = found, found.start_mark
        keys += walked
    complete = len(keys) >= len(steps) and keys[-1:] == steps[-1:]
    return (keys if complete else []), f":{mark.line + 1}:{mark.column + 1}" if mark else ""


def _child(node: Any, key: str) -> Any:
    return next((value for k, value in node.value if getattr(k, "value", None) == key), None)


def _check_component(doc: PipelineDoc, component: dict[str, Any], name: str) -> None:
    dag = component.get("dag")
    if dag is None:
        return
    for task_name, task in dag.get("tasks", {}).items():
        where = f"{doc.path}: task {task_name!r}"
        ref = task.get("componentRef", {}).get("name")
        if ref not in doc.components:
            raise PipelineSpecError(f"{where} refers to unknown component {ref!r}")
        if "artifactIterator" in task:
            raise UnsupportedLocallyError(
                f"{where}: loops over artifacts (dsl.ParallelFor over artifacts) are not supported locally"
            )
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition:
            try:
                cel.translate(condition)
            except UnsupportedLocallyError as err:
                raise UnsupportedLocallyError(f"{where}: {err}") from None
        for spec in task.get("inputs", {}).get("parameters", {}).values():
            selector = spec.get("parameterExpressionSelector")
            if selector and not _SELECTOR.match(selector):
                raise UnsupportedLocallyError(
                    f"{where}: parameter selector {selector!r} is not supported locally"
                )
        child = doc.components[ref]
        if "dag" in child:
            _check_component(doc, child, ref)
            continue
        executor = doc.executors.get(child.get("executorLabel", ""))
        if executor is None:
            raise PipelineSpecError(f"{where}: component {ref!r} has no executor")
        kinds = set(executor) - {"container", "importer"}
        if kinds:
            raise UnsupportedLocallyError(
                f"{where}: executor kind {sorted(kinds)[0]!r} is not supported locally "
                "(only containers and dsl.importer run on this machine)"
            )


def select(value: Any, selector: str) -> Any:
    """Apply a ``parseJson(string_value)["key"][0]`` parameter selector."""
    match = _SELECTOR.match(selector)
    assert match, selector
    current = json.loads(value) if isinstance(value, str) else value
    for key_a, key_b, index in _SELECTOR_STEP.findall(match.group(1)):
        current = current[int(index)] if index else current[key_a or key_b]
    return current


def resolve_parameters(doc: PipelineDoc, given: dict[str, Any]) -> dict[str, Any]:
    """Root parameters: declared defaults overlaid with ``given``, each typed by the rules
    :mod:`kubetfx.pipeline_file` applies for ``kubetfx submit`` too."""
    return pipeline_file.typed_parameters(given, doc.root_parameters(), doc.name, with_defaults=True)
