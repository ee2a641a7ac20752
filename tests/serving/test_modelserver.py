"""KServe's Python model server (the serving environment, ``make serving-env``) on a model
the Trainer trained: started on loopback, it answers V1 and V2 REST with the predictions
the in-process signature gives, refuses malformed requests, carries a small load, and is
stopped afterwards."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from kubetfx.artifacts.examples import first_records
from kubetfx.artifacts.model import find_saved_model
from kubetfx.serving.loadtest import percentiles, run_load
from kubetfx.serving.modelserver import (
    SERVING_PYTHON_ENV,
    RunningServer,
    ServingServerError,
    running_server,
    serving_python,
)

TOLERANCE = 1e-5  # same SavedModel, same TensorFlow version, float32 outputs


@pytest.fixture(scope="module")
def model(train_model) -> dict:
    """A SavedModel the Trainer wrote and eight eval examples (same training as the Pusher's tests)."""
    if serving_python() is None:
        pytest.fail("no serving environment: run `make serving-env` (the tests need KServe's model server)")
    trained = train_model(hyperparameters={"epochs": 2})
    return {
        "saved_model": find_saved_model(trained.path),
        "examples": first_records(trained.data.examples, "eval", 8),
    }


@pytest.fixture(scope="module")
def server(model: dict) -> Iterator[RunningServer]:
    with running_server(model["saved_model"], "penguins", timeout=240) as running:
        assert running.alive() and Path(f"/proc/{running.pid}").exists()
        yield running
    # Stopped and reaped: no process, not even a zombie, is left.
    assert not running.alive() and not Path(f"/proc/{running.pid}").exists()


def in_process(saved_model: str, examples: list[bytes]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    fn = tf.saved_model.load(saved_model).signatures["serving_default"]
    (name,) = fn.structured_input_signature[1]
    return {k: v.numpy() for k, v in fn(**{name: tf.constant(examples)}).items()}


def b64(record: bytes) -> str:
    return base64.b64encode(record).decode("ascii")


def test_v1_and_v2_answer_what_the_signature_computes(server: RunningServer, model: dict) -> None:
    expected = in_process(model["saved_model"], model["examples"])
    numeric = {k: v for k, v in expected.items() if v.dtype.kind == "f"}
    assert numeric, f"the signature has no float output to compare: {sorted(expected)}"

    v1 = httpx.post(
        server.predict_url, json={"instances": [{"b64": b64(r)} for r in model["examples"]]}, timeout=30
    )
    assert v1.status_code == 200, v1.text
    rows = v1.json()["predictions"]
    assert len(rows) == len(model["examples"])
    for key, values in numeric.items():
        got = np.array([row[key] if isinstance(row, dict) else row for row in rows], dtype=np.float64)
        np.testing.assert_allclose(got.reshape(values.shape), values, rtol=TOLERANCE, atol=TOLERANCE)

    body = {
        "inputs": [
            {
                "name": "examples",
                "datatype": "BYTES",
                "shape": [len(model["examples"])],
                "data": [b64(r) for r in model["examples"]],
                "parameters": {"content_type": "base64"},
            }
        ]
    }
    v2 = httpx.post(server.infer_url, json=body, timeout=30)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert sorted(outputs) == sorted(expected)
    for key, values in numeric.items():
        assert outputs[key]["shape"] == list(values.shape)
        np.testing.assert_allclose(
            np.array(outputs[key]["data"]).reshape(values.shape), values, rtol=TOLERANCE, atol=TOLERANCE
        )


def test_malformed_requests_are_refused_and_the_server_keeps_serving(
    server: RunningServer, model: dict
) -> None:
    not_base64 = httpx.post(server.predict_url, json={"instances": [{"b64": "!!not base64!!"}]}, timeout=30)
    assert not_base64.status_code == 400 and "instance 0" in not_base64.text
    not_an_example = httpx.post(
        server.predict_url, json={"instances": [{"b64": b64(b"\xff\x00junk")}]}, timeout=30
    )
    assert not_an_example.status_code == 400
    empty = httpx.post(server.predict_url, json={"instances": []}, timeout=30)
    assert empty.status_code == 400
    ok = httpx.post(server.predict_url, json={"instances": [{"b64": b64(model["examples"][0])}]}, timeout=30)
    assert ok.status_code == 200


def test_a_small_load_is_measured(
    server: RunningServer, model: dict, caplog: pytest.LogCaptureFixture
) -> None:
    payloads = [{"instances": [{"b64": b64(r)}]} for r in model["examples"]]
    with caplog.at_level(logging.INFO):  # as a task's log is: every request would be a line
        result = run_load(server.predict_url, payloads, requests=120, concurrency=4, timeout=30)
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert (result.requests, result.concurrency, result.errors) == (120, 4, 0)
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms
    assert result.seconds > 0 and result.requests_per_second > 0

    broken = run_load(server.url + "/v1/models/nosuchmodel:predict", payloads, requests=10, concurrency=2)
    assert broken.errors == 10 and broken.error_samples and "404" in broken.error_samples[0]


def test_percentiles_match_numpy() -> None:
    values = [float(v) for v in np.random.default_rng(7).exponential(10.0, 997)]
    assert percentiles(values) == pytest.approx(tuple(np.percentile(values, [50, 95, 99])), rel=1e-12)


def test_a_server_that_cannot_load_the_model_fails_with_its_log(tmp_path: Path) -> None:
    if serving_python() is None:
        pytest.fail("no serving environment: run `make serving-env`")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(ServingServerError, match="exited") as caught:
        with running_server(str(broken), "broken", timeout=120):
            pass
    assert "saved_model" in str(caught.value).lower() or "parse" in str(caught.value).lower()


def test_a_wrong_serving_python_setting_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SERVING_PYTHON_ENV, str(tmp_path / "no-python"))
    with pytest.raises(ServingServerError, match=SERVING_PYTHON_ENV):
        serving_python()


def test_a_server_whose_caller_is_killed_stops_itself(model: dict, run_processes, tmp_path: Path) -> None:
    """SIGKILL gives the caller no chance to stop its server: the server notices it was
    orphaned and exits, so a killed Pusher leaves no model server behind."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from kubetfx.serving.modelserver import running_server\n"
        "with running_server(sys.argv[1], 'orphan', timeout=240) as s:\n"
        "    print(s.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", script, model["saved_model"]], stdout=subprocess.PIPE, text=True
    )
    try:
        server_pid = int(caller.stdout.readline())
        assert run_processes.alive(server_pid)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait(timeout=30)
    deadline = time.monotonic() + 60
    while run_processes.alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if run_processes.alive(server_pid):
        os.kill(server_pid, signal.SIGKILL)
        pytest.fail(f"the model server {server_pid} outlived its killed caller")
