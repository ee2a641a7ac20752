"""Write the trimmed TFJob schema that tests/kustomize validates the multiworker overlay against.

Tests have no network, so the schema is committed. It comes from the Kubeflow Training
Operator's generated CRD (the operator that runs TFJobs: Kubeflow Trainer v2 has no
TensorFlow runtime)::

    git -C training-operator show v1.9.0:manifests/base/crds/kubeflow.org_tfjobs.yaml > crd.yaml
    .venv/bin/python tests/kustomize/schemas/trim_tfjob_crd.py crd.yaml v1.9.0 COMMIT \\
        > tests/kustomize/schemas/tfjob-v1.yaml

Trimming keeps the whole TFJob schema but for three things:

* ``status`` (written by the controller) dropped;
* every ``description`` dropped;
* each replica's ``template`` (a Kubernetes PodTemplateSpec, most of the file) becomes a
  stub marked ``x-kubetfx-trimmed: true``: the test validates the template against the
  Kubernetes schemas themselves, as a PodTemplate, which is stricter than the CRD's copy.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

VERSION = "v1"


def _strip(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def trim(crd: dict[str, Any]) -> dict[str, Any]:
    """The ``v1`` openAPIV3Schema of a TFJob CRD, trimmed as the module says."""
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
    schema = _strip(version["schema"]["openAPIV3Schema"])
    schema["properties"].pop("status", None)
    replica = schema["properties"]["spec"]["properties"]["tfReplicaSpecs"]["additionalProperties"]
    replica["properties"]["template"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubetfx-trimmed": True,
    }
    return schema


def main() -> None:
    source, tag, commit = sys.argv[1:4]
    crd = yaml.safe_load(open(source))
    print(
        "# The openAPIV3Schema of the Kubeflow Training Operator's TFJob CRD (kubeflow.org/v1),\n"
        f"# kubeflow/training-operator at tag {tag} ({commit}),\n"
        "# manifests/base/crds/kubeflow.org_tfjobs.yaml, trimmed by trim_tfjob_crd.py: no\n"
        "# descriptions, no status, each replica's PodTemplateSpec a stub (validated on its own)."
    )
    print(yaml.safe_dump(trim(crd), sort_keys=True), end="")


if __name__ == "__main__":
    main()
