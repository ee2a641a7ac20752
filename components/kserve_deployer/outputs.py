"""kserve_deployer's results as Kubeflow Pipelines hands them over: the output artifact's
metadata and the output parameters, from a :class:`~.executor.DeployResult`."""

from __future__ import annotations

import json
from typing import Any

from kubetfx.components.kserve_deployer.executor import DeployResult


def artifact_metadata(result: DeployResult) -> dict[str, Any]:
    """The ``deployment`` artifact's metadata (steps as JSON text, as lineage keeps lists)."""
    metadata = result.metadata()
    metadata["steps"] = json.dumps(metadata["steps"])
    return metadata


def parameters(result: DeployResult) -> tuple[str, bool, int]:
    """(state, serving: the version serves all traffic now, version)."""
    return result.state, result.state in ("deployed", "unchanged", "promoted"), result.version
