"""SIGKILL of the runner in object-store mode, then a rerun of the same command.

Twice: first while the Trainer task runs (``trainer.fit``, in the task's process), then,
in the first rerun, while the runner plays the launcher and has uploaded only part of
the Trainer's model (``launcher.upload.trainer``, in the runner itself: the task had
recorded itself COMPLETE). After each kill no process of the run is left; after both,
the last rerun completes, reuses the data tasks the first run completed, and lineage
holds no COMPLETE execution and no LIVE artifact whose files in the store are not the
ones it recorded (the half-uploaded model is FAILED, ABANDONED and removed).

The object store is a stand-in: moto's S3 server on loopback (see conftest.py) in place
of the cluster's MinIO, reached through s3fs exactly as MinIO would be.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import faults, storage
from kubetfx.fingerprint import fingerprint_remote
from kubetfx.lineage.record import FINGERPRINT_KEY, outputs_of, props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
TRAINING = str(REPO / "pipelines/training/pipeline.yaml")
DATA_TASKS = ("example-gen", "statistics-gen", "schema-gen")


def _run_id(text: str) -> str:
    match = re.search(r"^run (\S+): pipeline", text, re.MULTILINE) or re.search(r"^Run (\S+) ", text, re.M)
    assert match, text
    return match.group(1)


def _by_task(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    assert ctx is not None, f"no run {run_id} in lineage"
    return {props(e)["task_name"].split("/")[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _in_store(artifact: pb.Artifact) -> str:
    """Why the store does not hold what lineage recorded for ``artifact``; "" when it does."""
    if ".partial" in artifact.uri:
        return "a staging URI"
    recorded = props(artifact).get(FINGERPRINT_KEY)
    if not recorded:
        return ""  # an output its task did not write (Metrics): the launcher uploads nothing
    found = fingerprint_remote(artifact.uri)
    return "" if found == recorded else f"the store holds {found}, lineage recorded {recorded}"


def _assert_consistent(store) -> None:
    for execution in store.mlmd.get_executions():
        if execution.last_known_state == pb.Execution.COMPLETE:
            assert not props(execution)["cache_fingerprint"].startswith("upload-pending:"), execution
            for key, artifacts in outputs_of(store, execution.id).items():
                for artifact in artifacts:
                    why = _in_store(artifact)
                    assert not why, f"execution {execution.id} is COMPLETE, its {key} {artifact.uri}: {why}"
    for artifact in store.mlmd.get_artifacts():
        assert ".partial" not in artifact.uri, artifact.uri
        if artifact.state == pb.Artifact.LIVE:
            why = _in_store(artifact)
            assert not why, f"LIVE artifact {artifact.id} {artifact.uri}: {why}"


@pytest.mark.slow
def test_sigkill_mid_task_then_mid_upload_then_rerun(s3_env: str, workdir: Path, run_processes) -> None:
    root = f"minio://{s3_env}/v2/artifacts"
    marks = workdir / "failpoints"
    env = {**os.environ, "KUBETFX_PUSH_ROOT": f"s3://{s3_env}/serving", "TMPDIR": str(workdir)}
    for name in (faults.ENV, faults.DIR_ENV, faults.PAUSE_ENV):
        env.pop(name, None)
    command = [KUBETFX, "run", TRAINING, "--pipeline-root", root, "-p", "epochs=2"]
    store = connect(env["KUBETFX_METADATA"])

    def kill_at(point: str, log: Path) -> str:
        armed = {**env, faults.ENV: f"{point}:pause", faults.DIR_ENV: str(marks), faults.PAUSE_ENV: "240"}
        with open(log, "w") as out:
            runner = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=armed,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.time() + 420
        pid = None
        while pid is None and time.time() < deadline:
            for mark in marks.glob(f"{point}.*.json"):
                pid = int(json.loads(mark.read_text())["pid"])
            if pid is None and runner.poll() is not None:
                raise AssertionError(f"the run ended before {point}:\n{log.read_text()}")
            time.sleep(0.1)
        if pid is None:
            runner.kill()
            raise AssertionError(f"{point} never reached:\n{log.read_text()}")
        run_id = _run_id(log.read_text())
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and (run_processes.alive(pid) or run_processes.of(run_id)):
            time.sleep(0.1)
        assert not run_processes.alive(pid) and not run_processes.of(run_id), (
            f"processes of {run_id} outlived the runner"
        )
        for mark in marks.glob("*.json"):
            mark.unlink()
        return run_id

    # 1. Killed while the Trainer fits: its execution stays RUNNING; nothing of its model
    #    is in the store; the data tasks had completed.
    first = kill_at("trainer.fit", workdir / "first.log")
    killed = _by_task(store, first)
    assert killed["trainer"].last_known_state == pb.Execution.RUNNING
    assert all(killed[t].last_known_state == pb.Execution.COMPLETE for t in DATA_TASKS), killed
    assert not storage.files(f"{root}/kubetfx-training/{first}/trainer")
    _assert_consistent(store)

    # 2. The rerun is killed while the runner uploads the model: the task had recorded
    #    itself COMPLETE, under a pending cache key no run may take.
    second = kill_at("launcher.upload.trainer", workdir / "second.log")
    halfway = _by_task(store, second)
    assert all(halfway[t].last_known_state == pb.Execution.CACHED for t in DATA_TASKS), halfway
    trainer = halfway["trainer"]
    assert trainer.last_known_state == pb.Execution.COMPLETE
    assert props(trainer)["cache_fingerprint"].startswith("upload-pending:")
    [model] = outputs_of(store, trainer.id)["model"]
    assert len(storage.files(model.uri)) == 1  # one file of the model uploaded, then the kill

    # 3. The last rerun completes: the data tasks reused from the first run, the model
    #    trained again; the half-uploaded one FAILED, ABANDONED and gone from the store.
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=workdir, stdin=subprocess.DEVNULL, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    again = _by_task(store, _run_id(done.stdout))
    for task in DATA_TASKS:
        assert again[task].last_known_state == pb.Execution.CACHED, (task, done.stdout)
        assert props(again[task])["cached_execution_id"] == str(killed[task].id)
    assert again["trainer"].last_known_state == pb.Execution.COMPLETE
    assert again["pusher"].last_known_state == pb.Execution.COMPLETE
    [abandoned] = store.mlmd.get_executions_by_id([trainer.id])
    assert abandoned.last_known_state == pb.Execution.FAILED
    assert "before the launcher had uploaded" in props(abandoned)["error"]
    [gone] = store.mlmd.get_artifacts_by_id([model.id])
    assert gone.state == pb.Artifact.ABANDONED and not storage.files(model.uri)
    [new_model] = outputs_of(store, again["trainer"].id)["model"]
    assert new_model.uri != model.uri and storage.exists(f"{new_model.uri}/Format-Serving/saved_model.pb")
    _assert_consistent(store)
