"""Accelerator profiles compile to a GPU limit, node selector, toleration and the GPU image,
or fail early."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kubetfx.components import trainer

from kubetfx.accelerators import AcceleratorProfile, use_gpu_image
from kubetfx.compiling import compile_one
from kubetfx.errors import ConfigError
from kubetfx.images import GPU_IMAGE, RUNTIME_IMAGE, gpu_variant

REPO = Path(__file__).resolve().parents[2]
GPU_OVERLAY_PROFILE = REPO / "kustomize/overlays/gpu/accelerator-profile.yaml"

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
    assert spec["deploymentSpec"]["executors"]["exec-trainer"]["container"]["image"] == GPU_IMAGE


def test_vertex_target_uses_vertex_names_and_no_kubernetes_fields(tmp_path: Path) -> None:
    profile = AcceleratorProfile.from_dict({"count": 1, "gpu_type": "NVIDIA_L4", "target": "vertex"})
    docs = _compiled(profile, tmp_path)
    resources = docs[0]["deploymentSpec"]["executors"]["exec-trainer"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert docs[0]["deploymentSpec"]["executors"]["exec-trainer"]["container"]["image"] == GPU_IMAGE
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


def _gpu_placed(executor: dict, k8s: dict) -> bool:
    """Does the compiled task ask for a GPU, or for a place on GPU nodes?"""
    accelerator = executor["container"].get("resources", {}).get("accelerator", {})
    return bool(accelerator or k8s.get("nodeSelector") or k8s.get("tolerations"))


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
def test_reference_pipeline_with_the_gpu_overlay_profile_puts_the_gpu_image_on_gpu_nodes(
    pipeline: str, tmp_path: Path
) -> None:
    out = compile_one(pipeline, str(tmp_path / "gpu.yaml"), str(GPU_OVERLAY_PROFILE))
    spec, platform = yaml.safe_load_all(out.read_text())
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    trainer_exec = executors["exec-trainer"]
    assert trainer_exec["container"]["image"] == GPU_IMAGE
    assert trainer_exec["container"]["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    placed = {name for name, executor in executors.items() if _gpu_placed(executor, k8s.get(name, {}))}
    assert placed == {"exec-trainer"}
    for name, executor in executors.items():
        if "container" not in executor:  # importers
            continue
        # The CPU image never lands on a GPU node, and the (much bigger) GPU image only there.
        assert executor["container"]["image"] == (GPU_IMAGE if name in placed else RUNTIME_IMAGE), name


def test_the_checked_in_pipelines_stay_cpu_only() -> None:
    for pipeline in ("training", "continuous_training"):
        spec = next(yaml.safe_load_all((REPO / f"pipelines/{pipeline}/pipeline.yaml").read_text()))
        executors = spec["deploymentSpec"]["executors"].values()
        images = {e["container"]["image"] for e in executors if "container" in e}
        assert images == {RUNTIME_IMAGE}, pipeline


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/kubetfx/kubetfx-runtime:0.1.0", "ghcr.io/kubetfx/kubetfx-runtime-gpu:0.1.0"),
        ("localhost:5000/team/kubetfx-runtime:1.2", "localhost:5000/team/kubetfx-runtime-gpu:1.2"),
        ("kubetfx-runtime", "kubetfx-runtime-gpu"),
        ("ghcr.io/kubetfx/kubetfx-runtime-gpu:0.1.0", None),
        ("python:3.11", None),
        ("ghcr.io/acme/my-kubetfx-runtime:1", None),
    ],
)
def test_gpu_variant_keeps_registry_and_tag(image: str, expected: str | None) -> None:
    assert gpu_variant(image) == expected


def test_a_digest_pinned_cpu_image_has_no_derivable_gpu_variant() -> None:
    with pytest.raises(ConfigError, match="pinned by digest"):
        gpu_variant("ghcr.io/kubetfx/kubetfx-runtime@sha256:" + "0" * 64)


def test_a_users_own_image_is_kept(tmp_path: Path) -> None:
    @dsl.container_component
    def own() -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="registry.example/own-trainer:3", command=["true"])

    @dsl.pipeline(name="own")
    def pipeline() -> None:
        use_gpu_image(own())

    path = tmp_path / "own.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    spec = next(yaml.safe_load_all(path.read_text()))
    image = spec["deploymentSpec"]["executors"]["exec-own"]["container"]["image"]
    assert image == "registry.example/own-trainer:3"
