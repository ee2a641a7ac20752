"""The component image, really run: components execute inside the container exactly as the KFP
launcher starts them, and leave outputs and lineage behind.

For each component the test takes ``command`` and ``args`` from its compiled ``component.yaml``,
builds the executor input with KFP's own helpers (``kfp.local``: the same ExecutorInput the
launcher hands over, identity placeholders included) and resolves the placeholders with KFP's
own resolver. The container gets ``command`` as its entrypoint and ``args`` as its arguments (as
Kubernetes does), no network, a read-only root filesystem with a /tmp tmpfs, the image's own
non-root user, an output folder mounted at /out, and its metadata store from
``KUBETFX_METADATA``, as a cluster's ConfigMap would set it.

These tests need the image: ``scripts/image.sh`` builds it, then runs them with
``KUBETFX_IMAGE_TESTS=1``. Without that switch they are skipped (docs/image.md).
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetfx.images import GPU_IMAGE, RUNTIME_IMAGE

REPO = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("KUBETFX_IMAGE_TESTS") == "1"

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="needs the built image: run scripts/image.sh (sets KUBETFX_IMAGE_TESTS=1)"
)

MOUNT = "/out"  # where the host's output folder appears in the container
PIPELINE = "image-smoke"
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
UID = 1000


def podman() -> list[str]:
    """The podman command scripts/image.sh uses (it exports it), or the same default."""
    if os.environ.get("KUBETFX_PODMAN"):
        return shlex.split(os.environ["KUBETFX_PODMAN"])
    cache = Path(os.environ.get("KUBETFX_IMAGE_CACHE") or Path.home() / ".cache/kubetfx/image")
    driver_file = cache / "storage-driver"
    driver = driver_file.read_text().strip() if driver_file.exists() else "vfs"
    return [
        "podman",
        "--root", f"{cache}/storage",
        "--runroot", f"{cache}/run",
        "--storage-driver", driver,
        "--cgroup-manager", "cgroupfs",
        "--runtime", "/usr/sbin/runc",
    ]  # fmt: skip


def image() -> str:
    """The image under test: the one scripts/image.sh built (GPU_IMAGE with --gpu), else RUNTIME_IMAGE."""
    return os.environ.get("KUBETFX_IMAGE") or RUNTIME_IMAGE


# How a pod runs: no network, read-only root with a writable /tmp, the image's own user.
RUN_FLAGS = [
    "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
]  # fmt: skip


def podman_run(
    out: Path, entrypoint: list[str], args: list[str], timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the image as a KFP pod runs it: entrypoint = the task's command, then its args."""
    return subprocess.run(
        [
            *podman(),
            "run",
            *RUN_FLAGS,
            f"--volume={out}:{MOUNT}",
            f"--env=KUBETFX_METADATA=sqlite:///{MOUNT}/mlmd.sqlite",
            *(f"--env={name}={value}" for name, value in (env or {}).items()),
            f"--entrypoint={json.dumps(entrypoint)}",
            image(),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def load_component(name: str) -> tuple[Any, dict[str, Any]]:
    """(ComponentSpec proto, container spec) of a compiled component.yaml."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    doc = yaml.safe_load((REPO / "components" / name / "component.yaml").read_text())
    (component,) = doc["components"].values()
    spec = json_format.ParseDict(component, pipeline_spec_pb2.ComponentSpec())
    container = doc["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    # The image a cluster would pull is the one kubetfx.images names, and the one built here.
    assert container["image"] == RUNTIME_IMAGE, (
        f"{name}/component.yaml names {container['image']}, not {RUNTIME_IMAGE}: run make compile"
    )
    return spec, container


def launch(
    out: Path, component: str, task: str, run_id: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], subprocess.CompletedProcess]:
    """Build the executor input for one task, run it in the container; (executor input, process)."""
    from kfp.local import executor_input_utils, placeholder_utils

    spec, container = load_component(component)
    # What kubetfx.cluster.use_cluster_settings() gives a task in a KFP pod: its identity
    # as environment (the run id from the pod's pipeline/runid label), and KFP's pod name.
    identity = {
        "KUBETFX_PIPELINE_NAME": PIPELINE,
        "KUBETFX_RUN_ID": run_id,
        "KUBETFX_TASK_NAME": task,
        "KFP_POD_NAME": f"{PIPELINE}-{task}",
    }
    task_root = f"{MOUNT}/{task}"
    message = executor_input_utils.construct_executor_input(
        spec, arguments, task_root=task_root, block_input_artifact=False
    )
    executor_input = executor_input_utils.executor_input_to_dict(message, spec)
    resolve = {
        "executor_input_dict": executor_input,
        "pipeline_resource_name": PIPELINE,
        "task_resource_name": task,
        "pipeline_root": MOUNT,
        "unique_pipeline_id": run_id,
    }
    command = placeholder_utils.replace_placeholders(full_command=container["command"], **resolve)
    args = placeholder_utils.replace_placeholders(full_command=container["args"], **resolve)
    (json_arg,) = [a for a in args if a.startswith("{")]
    (out / task).mkdir()
    os.chown(out / task, UID, UID)
    process = podman_run(out, command, args, env=identity)
    return json.loads(json_arg), process


def host_path(out: Path, uri: str) -> Path:
    assert uri.startswith(MOUNT + "/"), uri
    return out / uri[len(MOUNT) + 1 :]


def check_ran(process: subprocess.CompletedProcess, what: str) -> None:
    assert process.returncode == 0, f"{what} failed in the container:\n{process.stdout}\n{process.stderr}"


def executor_output(out: Path, executor_input: dict[str, Any]) -> dict[str, Any]:
    return json.loads(host_path(out, executor_input["outputs"]["outputFile"]).read_text())


@pytest.fixture(scope="module", autouse=True)
def built_image() -> str:
    """The image must exist in scripts/image.sh's store: a missing one fails, naming the fix."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: scripts/image.sh installs it, builds the image and runs these")
    if subprocess.run([*podman(), "image", "exists", image()], capture_output=True).returncode != 0:
        pytest.fail(f"{image()} is not built: scripts/image.sh builds it, then runs these tests")
    return image()


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder mounted at /out, writable by the image's user (and nobody else's business)."""
    folder = tmp_path_factory.mktemp("image-out")
    os.chown(folder, UID, UID)
    return folder


@pytest.fixture(scope="module")
def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def example_gen(out: Path, run_id: str) -> dict[str, Any]:
    executor_input, process = launch(
        out, "example_gen", "example-gen", run_id, {"input_uri": PENGUINS, "splits": "train:2,eval:1"}
    )
    check_ran(process, "example_gen")
    return {"input": executor_input, "output": executor_output(out, executor_input), "log": process.stdout}


def test_the_gpu_image_carries_cuda_and_cudnn_for_tensorflow() -> None:
    """Only for the GPU variant (scripts/image.sh --gpu): the libraries TensorFlow loads from
    the nvidia-* wheels of requirements/runtime-gpu.txt are in the image; the CPU image has none."""
    labels = json.loads(
        subprocess.run(
            [*podman(), "image", "inspect", "--format", "{{json .Labels}}", image()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    gpu = image() == GPU_IMAGE
    assert labels["io.kubetfx.variant"] == ("gpu" if gpu else "cpu")
    root = subprocess.run(
        [*podman(), "image", "mount", image()], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        nvidia = Path(root, "opt/kubetfx/lib/python3.11/site-packages/nvidia")
        found = {lib.name for lib in nvidia.glob("*/lib/lib*.so*")}
        if gpu:
            assert any(name.startswith("libcudnn.so") for name in found), sorted(found)
            assert any(name.startswith("libcublas.so") for name in found), sorted(found)
        else:
            assert not found, f"CUDA libraries in the CPU image: {sorted(found)[:5]}"
    finally:
        subprocess.run([*podman(), "image", "unmount", image()], capture_output=True, check=False)


def test_image_is_non_root_and_has_no_build_tools() -> None:
    config = json.loads(
        subprocess.run(
            [*podman(), "image", "inspect", "--format", "{{json .Config}}", image()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert config["User"] == f"{UID}:{UID}"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].split(":")[0] == "/opt/kubetfx/bin"
    # The image's file system, read from the store: no container needed.
    root = subprocess.run(
        [*podman(), "image", "mount", image()], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        rootfs = Path(root)
        assert os.path.lexists(rootfs / "opt/kubetfx/bin/python3")
        found = [
            f"{folder}/{tool}"
            for folder in ("usr/bin", "usr/local/bin", "opt/kubetfx/bin")
            for tool in ("gcc", "g++", "cc", "c++", "make", "ld", "as")
            if os.path.lexists(rootfs / folder / tool)
        ]
        assert not found, f"build tools in the final image: {found}"
        assert (rootfs / "etc/passwd").read_text().count(f":{UID}:{UID}:") == 1
    finally:
        subprocess.run([*podman(), "image", "unmount", image()], capture_output=True, check=False)


def test_example_gen_writes_splits_output_and_lineage(out: Path, run_id: str, example_gen: dict) -> None:
    from kubetfx.lineage.query import run_tasks
    from kubetfx.lineage.store import connect

    (artifact,) = example_gen["input"]["outputs"]["artifacts"]["examples"]["artifacts"]
    examples = host_path(out, artifact["uri"])
    for split in ("train", "eval"):
        files = glob.glob(str(examples / f"Split-{split}" / "data_tfrecord-*.gz"))
        assert files, f"no TFRecords for {split} under {examples}"
    # Written by the container's user, not root.
    assert examples.stat().st_uid == UID
    assert not glob.glob(str(examples) + ".partial-*"), "a staging folder was left behind"

    document = example_gen["output"]
    (listed,) = document["artifacts"]["examples"]["artifacts"]
    assert listed["uri"] == artifact["uri"]
    assert json.loads(listed["metadata"]["split_names"]) == ["train", "eval"]
    assert document["parameterValues"]["row_count"] == 344
    assert "kubetfx: task example-gen of run" in example_gen["log"]

    store = connect(f"sqlite:///{out}/mlmd.sqlite")
    (task,) = [t for t in run_tasks(store, run_id) if t.task_name == "example-gen"]
    assert task.state == "COMPLETE"
    assert [uri for _, _, uri in task.outputs["examples"]] == [artifact["uri"]]


def test_statistics_gen_reads_the_examples_in_a_second_container(
    out: Path, run_id: str, example_gen: dict
) -> None:
    from kfp import dsl

    from kubetfx.lineage.query import run_tasks
    from kubetfx.lineage.store import connect

    (produced,) = example_gen["output"]["artifacts"]["examples"]["artifacts"]
    examples = dsl.Dataset(name="examples", uri=produced["uri"], metadata=produced["metadata"])
    executor_input, process = launch(out, "statistics_gen", "statistics-gen", run_id, {"examples": examples})
    check_ran(process, "statistics_gen")
    (stats,) = executor_input["outputs"]["artifacts"]["statistics"]["artifacts"]
    for split in ("train", "eval"):
        assert (host_path(out, stats["uri"]) / f"Split-{split}" / "FeatureStats.pb").stat().st_size > 0
    assert executor_output(out, executor_input)["parameterValues"]["num_examples"] == 344

    store = connect(f"sqlite:///{out}/mlmd.sqlite")
    tasks = {t.task_name: t for t in run_tasks(store, run_id)}
    assert {name: t.state for name, t in tasks.items()} == {
        "example-gen": "COMPLETE",
        "statistics-gen": "COMPLETE",
    }
    # One lineage across the two containers: the statistics' input is ExampleGen's output.
    (examples_id, _, _) = tasks["example-gen"].outputs["examples"][0]
    events = store.mlmd.get_events_by_execution_ids([tasks["statistics-gen"].execution_id])
    assert examples_id in {e.artifact_id for e in events if e.type == e.INPUT}
