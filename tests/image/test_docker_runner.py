"""kubetfx components under the KFP SDK's ``kfp.local.DockerRunner``, in the real image.

The SDK runs each task's resolved command in the component's image through a Docker engine
API. Here that engine is podman's Docker-compatible API service (``podman system service``),
on the same image store scripts/image.sh builds into, with the defaults a plain ``docker run``
would not give on this machine written into a ``containers.conf`` (no network, the ulimits runc
needs here). What is real: kfp 2.13's DockerRunner and its docker client, podman, runc, the
kubetfx image, the penguins data. What this does not prove: Docker Engine itself (another
implementation of the same API).

The SDK passes the container no environment variables, so the tasks write their outputs but
no lineage (``KUBETFX_METADATA`` is unset inside): the test checks that they say so.

These tests need the image: ``scripts/image.sh`` builds it, then runs them with
``KUBETFX_IMAGE_TESTS=1`` (and exports the podman command as ``KUBETFX_PODMAN``).
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import glob
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.local import config as local_config
from kubetfx.components import example_gen, statistics_gen

ENABLED = os.environ.get("KUBETFX_IMAGE_TESTS") == "1"
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"

pytestmark = [
    pytest.mark.skipif(
        not ENABLED, reason="needs the built image: run scripts/image.sh (sets KUBETFX_IMAGE_TESTS=1)"
    ),
    # The SDK warns for every task whose image name lacks "python" (kubetfx's does): expected.
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
]

CONTAINERS_CONF = """\
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
"""


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker API on a unix socket; yields its DOCKER_HOST URL."""
    podman = shlex.split(os.environ.get("KUBETFX_PODMAN", ""))
    if not podman:
        pytest.fail("KUBETFX_PODMAN is not set: run these through scripts/image.sh")
    base = tmp_path_factory.mktemp("podman-api")
    (base / "containers.conf").write_text(CONTAINERS_CONF)
    url = f"unix://{base}/docker.sock"
    log = (base / "service.log").open("w")
    service = subprocess.Popen(
        [*podman, "system", "service", "--time=0", url],
        env={**os.environ, "CONTAINERS_CONF": str(base / "containers.conf")},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    import docker

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = docker.DockerClient(base_url=url)
                client.ping()
                client.close()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if service.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"podman's API service did not start:\n{(base / 'service.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        service.terminate()
        service.wait(timeout=30)
        log.close()


@dsl.pipeline(name="docker-runner-penguins")
def penguins(input_uri: str = PENGUINS) -> dsl.Artifact:
    examples = example_gen(input_uri=input_uri)
    return statistics_gen(examples=examples.outputs["examples"]).outputs["statistics"]


def test_a_kubetfx_pipeline_runs_under_the_docker_runner(
    docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    root = tmp_path / "root"
    root.mkdir()
    # The image runs as uid 1000; the SDK mounts only the pipeline root, at the same path.
    os.chown(root, 1000, 1000)
    for parent in [tmp_path, *tmp_path.parents]:
        os.chmod(parent, os.stat(parent).st_mode | 0o001)  # traversable for the mount's path
    local.init(runner=local.DockerRunner(), pipeline_root=str(root))
    try:
        statistics = penguins().output
    finally:
        local_config.LocalExecutionConfig.instance = None
    out = capfd.readouterr().out

    assert statistics.uri.startswith(str(root))
    assert sorted(os.listdir(statistics.uri)) >= ["Split-eval", "Split-train"]
    assert Path(statistics.uri, "Split-train", "FeatureStats.pb").stat().st_size > 0
    examples = glob.glob(f"{root}/docker-runner-penguins-*/example-gen/examples/Split-train/*")
    assert examples, f"ExampleGen wrote no training split under {root}"
    # Both tasks ran in the image, said where their lineage went (nowhere), and finished.
    assert out.count("Found image") == 2, out
    assert out.count("KUBETFX_METADATA is not set") == 2, out
