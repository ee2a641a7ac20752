"""The built-in model on two workers: ``MultiWorkerMirroredStrategy`` across two processes
on loopback, each with its own ``TF_CONFIG``, as a TensorFlow job's workers run it.

Proves here: both workers train in step (the same epochs, the same weights to the byte),
early stopping stops both at the same epoch, only the chief writes the model, and the
chief's model loads and serves. Not proved here: a job across machines (no cluster).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts.examples import split_files
from kubetfx.tfrecord import read_tfrecord_gz

# Strategy creation waits for every worker: a worker that never comes would hang the other.
TIMEOUT = 600


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("prepared")
    paths = {k: str(root / k) for k in ("examples", "statistics", "schema")}
    example_gen.run("pkg://palmerpenguins/data/penguins.csv", paths["examples"])
    statistics_gen.run(paths["examples"], paths["statistics"])
    schema_gen.run(paths["statistics"], paths["schema"], label_key="species")
    return paths


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def workers(request):
    """Starts worker processes; kills whatever is left of them at the end."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        out = open(log, "w")  # noqa: SIM115 - closed with the process below
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=out, text=True, start_new_session=True
        )
        proc.log = out  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.log.close()  # type: ignore[attr-defined]


def test_two_workers_train_in_step_and_only_the_chief_writes_the_model(
    prepared, workers, tmp_path: Path
) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    hyperparameters = {"epochs": 40, "patience": 2, "learning_rate": 0.05}
    procs = []
    for index in range(2):
        env = dict(os.environ)
        env.update(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        command = [
            sys.executable,
            "-m",
            "kubetfx.components.trainer",
            "--examples",
            prepared["examples"],
            "--schema",
            prepared["schema"],
            "--statistics",
            prepared["statistics"],
            "--model",
            str(tmp_path / f"model-{index}"),
            "--label-key",
            "species",
            "--hyperparameters",
            json.dumps(hyperparameters),
        ]
        procs.append(workers(command, env, tmp_path / f"worker-{index}.log"))
    results = []
    for index, proc in enumerate(procs):
        try:
            stdout, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            log = (tmp_path / f"worker-{index}.log").read_text()
            pytest.fail(f"worker {index} did not finish in {TIMEOUT}s: {log[-3000:]}")
        log = (tmp_path / f"worker-{index}.log").read_text()
        assert proc.returncode == 0, log[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
        print(
            f"worker {index}:",
            {k: results[-1][k] for k in ("epochs", "best_epoch", "stop_reason", "metrics")},
        )
    chief, other = results
    assert chief["chief"] is True and other["chief"] is False
    assert chief["strategy"] == other["strategy"] == "MultiWorkerMirroredStrategy"
    assert chief["workers"] == other["workers"] == 2
    # Trained in step: the same epochs (early stopping agreed), the same weights.
    assert chief["epochs"] == other["epochs"] and chief["best_epoch"] == other["best_epoch"]
    assert chief["steps"] > 0 and 1 <= chief["best_epoch"] <= chief["epochs"] <= 40
    assert chief["stopped"] in ("early", "ceiling") and "2 workers" in chief["stop_reason"]
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["metrics"]["val_accuracy"] > 0.8  # a model, not noise (three classes)
    # Only the chief wrote: the model, its metadata; the other worker's folder does not exist.
    assert not (tmp_path / "model-1").exists()
    written = json.loads((tmp_path / "model-0/training.json").read_text())
    assert written["weights_sha256"] == chief["weights_sha256"]
    # The chief's model loads and serves tf.Examples, and its Keras model has those weights.
    import hashlib

    import keras
    import numpy as np
    import tensorflow as tf

    serving = tf.saved_model.load(str(tmp_path / "model-0/Format-Serving"))
    records = [r for f in split_files(prepared["examples"], "eval") for r in read_tfrecord_gz(f)]
    out = serving.signatures["serving_default"](examples=tf.constant(records))
    classes = out["classes"].numpy()
    assert out["probabilities"].shape == (len(records), 3)
    assert set(classes) <= {b"Adelie", b"Chinstrap", b"Gentoo"}
    model = keras.saving.load_model(str(tmp_path / "model-0/keras/model.keras"))
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    assert digest.hexdigest() == chief["weights_sha256"]
