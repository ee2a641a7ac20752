"""What a task pushes: samples from lineage metadata, pushed to a real Pushgateway."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubetfx import metrics
from kubetfx.artifacts.kinds import ANOMALIES, EVALUATION, EXAMPLES, PUSHED_MODEL, TYPE_KEY
from kubetfx.metrics import FAMILIES, Samples, grouping_key, push, task_samples

EXAMPLES_META = {TYPE_KEY: EXAMPLES, "row_counts": {"train": 233.0, "eval": 111.0}, "span": 3}
ANOMALIES_META = {
    TYPE_KEY: ANOMALIES,
    "anomaly_count": 1,
    "drift_distances": {"body_mass_g": 0.818, "island": 0.0135},
    "drift_thresholds": {"body_mass_g": 0.3, "island": 0.25},
    "skew_distances": {},
}
EVALUATION_META = {
    TYPE_KEY: EVALUATION,
    "blessed": 1,
    "eval_examples": 111,
    "fairness_metric": "accuracy",
    "fairness_gaps": {"sex": 0.02, "island": 0.0},
    # As lineage gives it back: a struct, with a NaN recorded as a string.
    "slice_metrics": {
        "Overall": {"examples": 111.0, "accuracy": 0.99, "macro_auc": 1.0},
        "sex=female": {"examples": 48.0, "accuracy": 1.0, "macro_auc": "NaN"},
    },
    "model_name": "penguins",
}
PUSHED_META = {
    TYPE_KEY: PUSHED_MODEL,
    "pushed": 1,
    "version": 4,
    "latency_p50_ms": 0.42,
    "latency_p95_ms": 1.56,
    "model_name": "penguins",
}


def _values(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return samples.values.get(name, {})


def test_samples_come_from_the_metadata_lineage_holds() -> None:
    samples = task_samples(
        succeeded=True,
        seconds=1.5,
        ended=1_700_000_000.0,
        outputs=[EXAMPLES_META, ANOMALIES_META, EVALUATION_META, PUSHED_META],
    )
    assert _values(samples, "kubetfx_examples_rows") == {
        (("split", "eval"),): 111.0,
        (("split", "train"),): 233.0,
    }
    assert _values(samples, "kubetfx_data_drift_distance")[(("feature", "body_mass_g"),)] == 0.818
    assert _values(samples, "kubetfx_data_drifted_features") == {(): 1.0}
    assert (
        _values(samples, "kubetfx_evaluation_metric")[(("metric", "accuracy"), ("slice", "sex=female"))]
        == 1.0
    )
    # NaN is left out, not exported as a number a panel or alert would read.
    assert (("metric", "macro_auc"), ("slice", "sex=female")) not in _values(
        samples, "kubetfx_evaluation_metric"
    )
    assert _values(samples, "kubetfx_evaluation_slice_examples")[(("slice", "Overall"),)] == 111.0
    gap = _values(samples, "kubetfx_evaluation_fairness_gap")
    assert gap[(("feature", "sex"), ("metric", "accuracy"))] == 0.02
    assert _values(samples, "kubetfx_model_pushed_version") == {(): 4.0}
    latency = _values(samples, "kubetfx_serving_check_latency_seconds")
    assert latency[(("quantile", "0.95"),)] == pytest.approx(0.00156)
    assert _values(samples, "kubetfx_task_last_success_timestamp_seconds") == {(): 1_700_000_000.0}
    assert "kubetfx_task_last_failure_timestamp_seconds" not in samples.values
    assert metrics.model_of([EXAMPLES_META, EVALUATION_META]) == "penguins"


def test_a_failed_task_says_so_and_keeps_no_success_time() -> None:
    samples = task_samples(succeeded=False, seconds=None, ended=5.0)
    assert _values(samples, "kubetfx_task_succeeded") == {(): 0.0}
    assert _values(samples, "kubetfx_task_last_failure_timestamp_seconds") == {(): 5.0}
    assert "kubetfx_task_last_success_timestamp_seconds" not in samples.values


def test_redacted_features_never_reach_a_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETFX_REDACT_FEATURES", "sex")
    meta = dict(EVALUATION_META, slice_metrics={"sex=female & island=Dream": {"accuracy": 0.5}})
    samples = task_samples(succeeded=True, seconds=1.0, ended=1.0, outputs=[meta])
    [key] = _values(samples, "kubetfx_evaluation_metric")
    slice_name = dict(key)["slice"]
    assert (
        "female" not in slice_name and slice_name.startswith("sex=#") and slice_name.endswith("island=Dream")
    )


def test_label_values_are_bounded() -> None:
    samples = Samples()
    for i in range(metrics.MAX_SERIES_PER_METRIC + 5):
        samples.add("kubetfx_data_drift_distance", 0.1, feature=f"f{i}")
    assert len(_values(samples, "kubetfx_data_drift_distance")) == metrics.MAX_SERIES_PER_METRIC
    assert samples.dropped == {"kubetfx_data_drift_distance": 5}
    with pytest.raises(ValueError, match="takes labels"):
        samples.add("kubetfx_data_drift_distance", 0.1)


def test_names_follow_prometheus_conventions() -> None:
    for name, family in FAMILIES.items():
        assert name.startswith("kubetfx_") and name == name.lower(), name
        assert not name.endswith("_total"), f"{name}: every kubetfx metric is a gauge"
        if "timestamp" in name or "duration" in name or "latency" in name:
            assert name.endswith("_seconds"), name
        assert family.help.endswith("."), name
        assert "run" not in family.labels and "run_id" not in family.labels, name


def _scrape(gateway_url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(gateway_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("kubetfx_"):
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_pushed_to_a_real_pushgateway_grouped_by_pipeline_task_and_model(gateway) -> None:
    group = grouping_key("kubetfx-training", "evaluator", "penguins")
    samples = task_samples(succeeded=True, seconds=2.0, ended=100.0, outputs=[EVALUATION_META])
    assert push(samples, group, gateway=gateway.url) == ""
    found = _scrape(gateway.url)
    [(labels, value)] = [
        s
        for s in found["kubetfx_evaluation_metric"]
        if s[0]["slice"] == "Overall" and s[0]["metric"] == "accuracy"
    ]
    assert value == 0.99
    assert labels["job"] == "kubetfx" and labels["pipeline"] == "kubetfx-training"
    assert labels["task"] == "evaluator" and labels["model"] == "penguins"
    assert "run" not in labels and "run_id" not in labels

    # A later failure replaces the outcome but keeps the last success (POST, not PUT).
    assert push(task_samples(succeeded=False, seconds=1.0, ended=200.0), group, gateway=gateway.url) == ""
    found = _scrape(gateway.url)
    assert [v for _, v in found["kubetfx_task_succeeded"]] == [0.0]
    assert [v for _, v in found["kubetfx_task_last_success_timestamp_seconds"]] == [100.0]
    assert [v for _, v in found["kubetfx_task_last_failure_timestamp_seconds"]] == [200.0]
    # A value with a slash or an empty value is a valid grouping key too.
    assert push(samples, grouping_key("team/a", "", ""), gateway=gateway.url) == ""
    assert any(
        labels.get("pipeline") == "team/a" for labels, _ in _scrape(gateway.url)["kubetfx_task_succeeded"]
    )


def test_a_pushgateway_that_is_down_is_a_reason_not_an_error(gateway) -> None:
    gateway.stop()
    reason = push(
        task_samples(succeeded=True, seconds=1.0, ended=1.0), grouping_key("p", "t"), gateway=gateway.url
    )
    assert reason.startswith(f"metrics not pushed to {gateway.url}: "), reason


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a Pushgateway that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_pushgateway_that_hangs_is_given_up_on(silent_server: str) -> None:
    reason = push(
        task_samples(succeeded=True, seconds=1.0, ended=1.0),
        grouping_key("p", "t"),
        gateway=silent_server,
        timeout=0.5,
    )
    assert reason.startswith("metrics not pushed") and "timed out" in reason, reason


def test_no_gateway_configured_pushes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.PUSHGATEWAY_ENV, raising=False)
    assert push(task_samples(succeeded=True, seconds=1.0, ended=1.0), grouping_key("p", "t")) == ""


def test_credentials_in_the_gateway_url_stay_out_of_the_reason() -> None:
    reason = push(
        task_samples(succeeded=True, seconds=1.0, ended=1.0),
        grouping_key("p", "t"),
        gateway="http://user:hunter2@127.0.0.1:9",
        timeout=0.5,
    )
    assert reason and "hunter2" not in reason, reason
