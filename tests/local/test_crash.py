"""Kills are normal events: after a SIGKILL of the runner or of a task, rerunning the same
command completes, reuses what had completed, and nothing half-written is published."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Output
from kubetfx.components import example_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.dsl import component
from kubetfx.lineage.record import outputs_of
from kubetfx.lineage.store import connect

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))


@component
def gated_copy(examples: Input[Dataset], gate: str, copied: Output[Dataset]):
    """Writes half its output, then waits for the gate file before finishing."""
    import os
    import shutil
    import time

    os.makedirs(copied.path)
    shutil.copytree(os.path.join(examples.path, "Split-train"), os.path.join(copied.path, "Split-train"))
    deadline = time.time() + 120
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    shutil.copytree(os.path.join(examples.path, "Split-eval"), os.path.join(copied.path, "Split-eval"))
    copied.metadata["complete"] = True


@dsl.pipeline(name="crashy")
def crashy(gate: str = ""):
    gen = example_gen(input_uri="pkg://palmerpenguins/data/penguins.csv")
    gated_copy(examples=gen.outputs["examples"], gate=gate)


def _state_files(root: Path) -> list[Path]:
    return list(root.glob("**/gated-copy/.kubetfx/state.json"))


def _wait_for_running_task(root: Path, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in _state_files(root):
            try:
                state = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if state.get("status") == "running" and list(
                path.parent.parent.parent.glob("gated-copy/copied.partial-*/Split-train")
            ):
                return state
        time.sleep(0.1)
    raise AssertionError("gated-copy never started")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


def _assert_consistent(store) -> None:
    """No execution is COMPLETE without its outputs, and no LIVE artifact is half-written."""
    for execution in store.mlmd.get_executions():
        if execution.last_known_state == pb.Execution.COMPLETE:
            outputs = outputs_of(store, execution.id)
            for artifacts in outputs.values():
                for artifact in artifacts:
                    assert os.path.exists(artifact.uri), artifact.uri
    for artifact in store.mlmd.get_artifacts():
        assert ".partial-" not in artifact.uri
        if "copied" in artifact.uri:
            assert Path(artifact.uri, "Split-eval").is_dir(), "a LIVE artifact must be complete"


def _open_gate_and_rerun(path: Path, gate: Path, env: dict, store) -> None:
    """Rerunning the same command completes, reusing what had completed."""
    gate.write_text("open")
    rerun = _run(path, gate, env)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert "example-gen  CACHED" in out and "gated-copy   SUCCEEDED" in out
    _assert_consistent(store)


def _run(path: Path, gate: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [KUBETFX, "run", str(path), "--param", f"gate={gate}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_runner_killed_mid_task_then_rerun_completes(workdir: Path, compile_to) -> None:
    path = compile_to(crashy)
    gate = workdir / "gate"
    env = dict(os.environ)
    runner = _run(path, gate, env)
    state = _wait_for_running_task(workdir / "root")
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    # The task dies with the runner: no orphan keeps writing (give a loaded machine time).
    deadline = time.time() + 20
    while time.time() < deadline and _alive(state["pid"]):
        time.sleep(0.1)
    assert not _alive(state["pid"]), "the task outlived the runner"
    store = connect(os.environ["KUBETFX_METADATA"])
    [killed] = store.mlmd.get_executions_by_id([state["execution_id"]])
    assert killed.last_known_state == pb.Execution.RUNNING  # never COMPLETE
    assert not list((workdir / "root").glob("**/gated-copy/copied"))  # only the staging path exists
    assert list((workdir / "root").glob("**/gated-copy/copied.partial-*"))
    _assert_consistent(store)

    _open_gate_and_rerun(path, gate, env, store)


def test_task_killed_fails_the_run_and_rerun_completes(workdir: Path, compile_to) -> None:
    path = compile_to(crashy)
    gate = workdir / "gate"
    env = dict(os.environ)
    runner = _run(path, gate, env)
    state = _wait_for_running_task(workdir / "root")
    os.kill(state["pid"], signal.SIGKILL)
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 1, out
    assert "killed by signal SIGKILL" in out
    store = connect(os.environ["KUBETFX_METADATA"])
    [killed] = store.mlmd.get_executions_by_id([state["execution_id"]])
    assert killed.last_known_state == pb.Execution.FAILED
    _assert_consistent(store)

    _open_gate_and_rerun(path, gate, env, store)
