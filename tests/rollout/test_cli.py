"""``kubetfx rollout --local`` as a person runs it: the command starts its own model
servers, router and Prometheus; this test only sends traffic to the router's port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kubetfx.lineage.aliases import aliases
from kubetfx.lineage.rollouts import rollouts_of
from kubetfx.lineage.store import connect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_kubetfx_rollout_local_promotes_a_healthy_version(
    served: Any, start_load: Any, recorded_push: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    store = connect(url)
    for version in (1, 2):
        recorded_push(store, served.push_root, version)
    port = _free_port()
    kubetfx = str(Path(sys.executable).with_name("kubetfx"))
    command = [
        kubetfx, "rollout", "penguins:2", "--from", "1", "--local", "--router-port", str(port),
        "--push-root", str(served.push_root), "--steps", "10,50", "--window", "4s", "--interval", "1s",
        "--warmup", "3s", "--min-requests", "10", "--metadata", url,
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    ) as process:
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2):  # noqa: S310
                        break
                except OSError:
                    pass
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the router never came up"
                time.sleep(0.5)
            start_load(f"http://127.0.0.1:{port}")
            output, _ = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    print(output)
    assert process.returncode == 0, output
    assert "router (stand-in for KServe's traffic split)" in output and "promoted" in output
    [rollout] = rollouts_of(store, "penguins", 2)
    assert rollout.state == "promoted" and [s.percent for s in rollout.steps] == [10, 50, 100]
    assert aliases(store, "penguins")["production"] == 2
