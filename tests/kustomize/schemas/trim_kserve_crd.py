"""Write the trimmed KServe InferenceService schema that tests/kustomize validates against.

Tests have no network, so the schema is committed. It comes from KServe's generated CRD::

    git -C kserve show v0.20.0:config/crd/full/serving.kserve.io_inferenceservices.yaml > crd.yaml
    .venv/bin/python tests/kustomize/schemas/trim_kserve_crd.py crd.yaml v0.20.0 COMMIT \\
        > tests/kustomize/schemas/inferenceservice-v1beta1.yaml

Trimming keeps everything kubetfx's InferenceService uses at full depth and only
type-checks the rest:

* the ``v1beta1`` version's ``openAPIV3Schema``; ``status`` (written by the controller) dropped;
* every ``description`` dropped (most of the 2 MB);
* ``spec.transformer``, ``spec.explainer`` and any other ``spec`` field but ``predictor``,
  and every ``predictor`` field whose schema is over 4,000 characters of JSON except
  ``model`` and ``volumes`` (the framework shorthands ``tensorflow``/``sklearn``/...,
  ``containers``, ``initContainers``, ``workerSpec``, ``affinity``, ``autoScaling``...),
  become stubs of the same type marked ``x-kubetfx-trimmed: true`` that accept any content.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

VERSION = "v1beta1"
KEEP_FULL = {"model", "volumes"}
STUB_OVER = 4000
SOURCE = "kserve/kserve config/crd/full/serving.kserve.io_inferenceservices.yaml"


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def _stub(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "array":
        return {
            "type": "array",
            "items": {"x-kubernetes-preserve-unknown-fields": True},
            "x-kubetfx-trimmed": True,
        }
    return {
        "type": schema.get("type", "object"),
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubetfx-trimmed": True,
    }


def trim(crd: dict[str, Any]) -> dict[str, Any]:
    """The trimmed ``openAPIV3Schema`` of the InferenceService CRD's v1beta1 version."""
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
    schema = _without_descriptions(version["schema"]["openAPIV3Schema"])
    schema["properties"].pop("status", None)
    spec = schema["properties"]["spec"]["properties"]
    for name in list(spec):
        if name != "predictor":
            spec[name] = _stub(spec[name])
    predictor = spec["predictor"]["properties"]
    for name, sub in list(predictor.items()):
        if name not in KEEP_FULL and len(json.dumps(sub)) > STUB_OVER:
            predictor[name] = _stub(sub)
    return schema


def main(argv: list[str]) -> int:
    """``trim_kserve_crd.py CRD.yaml TAG COMMIT``: print the trimmed schema as YAML."""
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, tag, commit = argv[1:]
    with open(path) as f:
        crd = yaml.safe_load(f)
    header = (
        f"# KServe InferenceService ({crd['spec']['group']}/{VERSION}) openAPIV3Schema, TRIMMED.\n"
        f"# Source: {SOURCE}\n"
        f"#   at {tag} (commit {commit}).\n"
        "# Made by tests/kustomize/schemas/trim_kserve_crd.py (its docstring says what was cut);\n"
        "# regenerate with it rather than editing by hand.\n"
    )
    sys.stdout.write(header + yaml.safe_dump(trim(crd), sort_keys=True, width=100))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
