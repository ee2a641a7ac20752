"""Accelerator profiles compile to a GPU limit, node selector and toleration, or fail early."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kubetfx.components import trainer

from kubetfx.accelerators import AcceleratorProfile
from kubetfx.errors import ConfigError

PROFILE = """
count: 2
gpu_type: nvidia-l4
node_selector:
  cloud.google.com/gke-accelerator: nvidia-l4
  pool: gpu
toleration: {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
"""


def _compiled(profile: AcceleratorProfile, tmp_path: Path) -> list[dict]:
    @dsl.pipeline(name="gpu")
    def gpu(examples_uri: str = "x"):
        data = dsl.importer(artifact_uri=examples_uri, artifact_class=dsl.Dataset)
        task = trainer(examples=data.output, schema=data.output, statistics=data.output, label_key="y")
        profile.apply(task)

    path = tmp_path / "gpu.yaml"
    compiler.Compiler().compile(gpu, str(path))
    return list(yaml.safe_load_all(path.read_text()))


def test_kubeflow_profile_compiles_to_limit_node_selector_and_toleration(tmp_path: Path) -> None:
    (tmp_path / "gpu.yaml.in").write_text(PROFILE)
    profile = AcceleratorProfile.load(tmp_path / "gpu.yaml.in")
    spec, platform = _compiled(profile, tmp_path)
    resources = spec["deploymentSpec"]["executors"]["exec-trainer"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "2"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-trainer"]
    assert k8s["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "gpu"}
    assert k8s["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]


def test_vertex_target_uses_vertex_names_and_no_kubernetes_fields(tmp_path: Path) -> None:
    profile = AcceleratorProfile.from_dict({"count": 1, "gpu_type": "NVIDIA_L4", "target": "vertex"})
    docs = _compiled(profile, tmp_path)
    resources = docs[0]["deploymentSpec"]["executors"]["exec-trainer"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert len(docs) == 1, "no Kubernetes platform spec for Vertex"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": 0}, "count must be a whole number from 1 to 16"),
        ({"count": "two"}, "count must be a whole number"),
        ({"gpus": 1}, "unknown field 'gpus'"),
        ({"node_selector": {"bad key!": "x"}}, "not a valid Kubernetes label key"),
        ({"node_selector": {"pool": "has space"}}, "not a valid label value"),
        ({"toleration": {"operator": "Maybe"}}, "toleration.operator must be Exists or Equal"),
        ({"toleration": {"effect": "Never"}}, "toleration.effect must be one of"),
        ({"toleration": {"operator": "Equal"}}, "Equal needs a value"),
        ({"target": "slurm"}, "target must be kubeflow or vertex"),
        ({"target": "vertex", "gpu_type": "nvidia-l4"}, "not a Vertex accelerator name"),
    ],
)
def test_invalid_profiles_fail_naming_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AcceleratorProfile.from_dict(data, source="gpu.yaml")


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("count: 1\nnode_selector: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: not valid YAML"):
        AcceleratorProfile.load(path)
