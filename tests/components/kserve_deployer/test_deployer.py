"""kserve_deployer's branches against a recording stand-in for the Kubernetes API (no
cluster can run here): first deployment, nothing to do, nothing pushed, an unpinned
InferenceService, and what it writes. The rollout itself is tested in tests/rollout."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubetfx.components.kserve_deployer import executor, outputs

from kubetfx.errors import ParameterError
from kubetfx.serving.inferenceservice import inference_service
from kubetfx.serving.rollout import RolloutSettings

PUSHED = {
    "pushed": 1,
    "model_name": "penguins",
    "version": 4,
    "destination": "s3://models/serving/penguins/4",
}


class Api:
    """Records what the deployer asks of the API server; holds at most one object."""

    def __init__(self, live: dict[str, Any] | None) -> None:
        self.live = live
        self.calls: list[str] = []

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        self.calls.append(f"get {plural}/{name} in {ns}")
        if self.live is None:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.live)

    def create_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, body: Any
    ) -> None:
        self.calls.append(f"create {plural}/{body['metadata']['name']} in {ns}")
        self.live = body


def _deploy(api: Api, tmp_path: Path, pushed: dict[str, Any] = PUSHED) -> executor.DeployResult:
    return executor.deploy(
        pushed, str(tmp_path), namespace="team", prometheus_url="", settings=RolloutSettings(), api=api
    )


def test_the_first_deployment_creates_the_pinned_inference_service(tmp_path: Path) -> None:
    api = Api(None)
    result = _deploy(api, tmp_path)
    assert result.state == "deployed" and api.calls == [
        "get inferenceservices/penguins in team",
        "create inferenceservices/penguins in team",
    ]
    assert api.live is not None
    assert api.live["spec"]["predictor"]["storageUris"] == [
        {"uri": "s3://models/serving/penguins/4", "mountPath": "/mnt/models/4"}
    ]
    written = yaml.safe_load((tmp_path / executor.MANIFEST_FILE).read_text())
    assert written == api.live
    assert outputs.parameters(result) == ("deployed", True, 4)


def test_a_version_already_served_is_left_alone(tmp_path: Path) -> None:
    api = Api(inference_service("penguins", 4, "s3://models/serving"))
    result = _deploy(api, tmp_path)
    assert result.state == "unchanged" and not any(c.startswith("create") for c in api.calls)
    assert outputs.parameters(result) == ("unchanged", True, 4)


def test_nothing_pushed_deploys_nothing(tmp_path: Path) -> None:
    api = Api(None)
    result = _deploy(api, tmp_path, {**PUSHED, "pushed": 0, "version": 0, "reason": "not blessed"})
    assert result.state == "skipped" and "not blessed" in result.reason and api.calls == []
    assert outputs.parameters(result)[1] is False


def test_an_unpinned_service_or_a_missing_prometheus_is_refused_with_a_reason(tmp_path: Path) -> None:
    unpinned = inference_service("penguins", 3, "s3://models/serving")
    del unpinned["spec"]["predictor"]["storageUris"]
    with pytest.raises(ParameterError, match="not pinned"):
        _deploy(Api(unpinned), tmp_path)
    with pytest.raises(ParameterError, match="prometheus_url"):
        _deploy(Api(inference_service("penguins", 3, "s3://models/serving")), tmp_path)


def test_the_push_root_comes_from_the_pushed_destination() -> None:
    assert executor.push_root_of("s3://m/serving/penguins/4/", "penguins", 4) == "s3://m/serving"
    with pytest.raises(ParameterError):
        executor.push_root_of("s3://m/serving/other/4", "penguins", 4)
