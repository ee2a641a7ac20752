"""The reference pipeline's metrics in a real Prometheus, equal to what lineage holds; and a
run whose Pushgateway dies mid-run succeeds with a warning and a note in lineage.

Real parts: `kubetfx run` on the penguins data, Debian's prometheus-pushgateway and
prometheus (scraping the gateway every second, honor_labels), Prometheus's HTTP query API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
NAME = "kubetfx-training"


def _query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _wait_for(prometheus_url: str, expr: str, count: int = 1) -> list[dict[str, Any]]:
    """The query's result once it has ``count`` series (Prometheus scrapes every second)."""
    deadline = time.monotonic() + 60
    while True:
        result = _query(prometheus_url, expr)
        if len(result) >= count or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def _value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def _by_task(store: Any, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return {props(e)["task_name"].rsplit("/", 1)[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _output(store: Any, execution: pb.Execution, key: str) -> pb.Artifact:
    [event] = [
        e
        for e in store.mlmd.get_events_by_execution_ids([execution.id])
        if e.type == pb.Event.OUTPUT and e.path.steps[0].key == key
    ]
    [artifact] = store.mlmd.get_artifacts_by_id([event.artifact_id])
    return artifact


def _run_id(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]


@pytest.mark.slow
def test_the_reference_pipeline_metrics_in_prometheus_equal_lineage(
    workdir: Path, cli, gateway, prometheus
) -> None:
    result = cli("run", PIPELINE, env={"KUBETFX_PUSHGATEWAY": gateway.url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics not pushed" not in result.stdout + result.stderr and "Metrics:" not in result.stdout
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    executions = _by_task(store, _run_id(result.stdout))
    url = prometheus.url

    # Every task that ran pushed its outcome, grouped by pipeline and task, never by run.
    outcome = _wait_for(url, f'kubetfx_task_succeeded{{pipeline="{NAME}"}}', count=len(executions))
    assert {s["metric"]["task"].rsplit("/", 1)[-1] for s in outcome} == set(executions)
    assert all(_value(s) == 1 for s in outcome)
    assert all("run" not in s["metric"] and "run_id" not in s["metric"] for s in outcome)
    trainer = props(executions["trainer"])
    [duration] = _wait_for(url, f'kubetfx_task_duration_seconds{{pipeline="{NAME}", task="trainer"}}')
    assert _value(duration) == pytest.approx(trainer["end_time"] - trainer["start_time"], abs=0.5)

    # Data: rows per split and the drift thresholds, as ExampleGen and the validator recorded.
    examples = props(_output(store, executions["example-gen"], "examples"))
    rows = _wait_for(url, f'kubetfx_examples_rows{{pipeline="{NAME}"}}', count=2)
    assert {s["metric"]["split"]: _value(s) for s in rows} == {
        k: float(v) for k, v in examples["row_counts"].items()
    }
    anomalies = props(_output(store, executions["example-validator"], "anomalies"))
    [count] = _wait_for(url, f'kubetfx_data_anomalies{{pipeline="{NAME}"}}')
    assert _value(count) == anomalies["anomaly_count"]
    thresholds = _wait_for(url, "kubetfx_data_drift_threshold", count=len(anomalies["drift_thresholds"]))
    assert {s["metric"]["feature"]: _value(s) for s in thresholds} == pytest.approx(
        anomalies["drift_thresholds"]
    )

    # Model: accuracy per slice, fairness gaps, blessed, the pushed version and its latency.
    evaluation = props(_output(store, executions["evaluator"], "evaluation"))
    slices = evaluation["slice_metrics"]
    accuracy = _wait_for(
        url, 'kubetfx_evaluation_metric{model="penguins", metric="accuracy"}', count=len(slices)
    )
    assert {s["metric"]["slice"]: _value(s) for s in accuracy} == pytest.approx(
        {name: m["accuracy"] for name, m in slices.items()}
    )
    gaps = _wait_for(
        url, 'kubetfx_evaluation_fairness_gap{model="penguins"}', count=len(evaluation["fairness_gaps"])
    )
    assert {s["metric"]["feature"]: _value(s) for s in gaps} == pytest.approx(evaluation["fairness_gaps"])
    [blessed] = _wait_for(url, 'kubetfx_model_blessed{model="penguins"}')
    assert _value(blessed) == evaluation["blessed"] == 1
    [streak] = _wait_for(url, 'kubetfx_model_unblessed_runs{model="penguins"}')
    assert _value(streak) == 0
    pushed = props(_output(store, executions["pusher"], "pushed_model"))
    [version] = _wait_for(url, 'kubetfx_model_pushed_version{model="penguins"}')
    assert _value(version) == pushed["version"] == 1
    [p95] = _wait_for(url, 'kubetfx_serving_check_latency_seconds{model="penguins", quantile="0.95"}')
    assert _value(p95) == pytest.approx(pushed["latency_p95_ms"] / 1000)


@pytest.mark.slow
def test_a_pushgateway_that_dies_mid_run_leaves_the_run_succeeded(workdir: Path, gateway) -> None:
    """The gateway is stopped once the first task has pushed: later tasks cannot push, each
    says so in its log and in lineage, and the run succeeds as it would without metrics."""
    kubetfx = str(Path(sys.executable).with_name("kubetfx"))
    env = {**os.environ, "KUBETFX_PUSHGATEWAY": gateway.url, "KUBETFX_PUSHGATEWAY_TIMEOUT": "1"}
    process = subprocess.Popen(
        [kubetfx, "run", PIPELINE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not _pushed_groups(gateway.url):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no task pushed in 5 minutes"
            time.sleep(0.1)
        gateway.stop()
        output, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    executions = _by_task(store, _run_id(output))
    notes = {task: props(e).get("metrics_push", "") for task, e in executions.items()}
    failed = {task for task, note in notes.items() if note.startswith(f"metrics not pushed to {gateway.url}")}
    # The last tasks ran after the gateway was gone; every execution still completed.
    assert {"trainer", "evaluator", "pusher"} <= failed, notes
    assert all(e.last_known_state == pb.Execution.COMPLETE for e in executions.values())
    # The summary says so in one line; the run's state does not change.
    [line] = [line for line in output.splitlines() if line.startswith("Metrics:")]
    assert "could not push theirs" in line and "trainer" in line and "the run is not affected" in line


def _pushed_groups(gateway_url: str) -> list[dict[str, Any]]:
    """The groups the Pushgateway holds (its API), or [] while it cannot answer."""
    try:
        with urllib.request.urlopen(f"{gateway_url}/api/v1/metrics", timeout=5) as response:
            return json.loads(response.read())["data"]
    except OSError:
        return []
