"""Pipeline and model metrics for Prometheus, pushed to a Pushgateway.

Every kubetfx task pushes, when it ends, what it knows: its duration and outcome, and the
numbers its outputs carry in lineage (rows per split, anomalies, drift distances, model
metrics per slice, fairness gaps, the blessing, the pushed version, serving-check latency).
The numbers are read from the same artifact metadata lineage records, so Prometheus and
lineage cannot disagree.

Conventions (https://prometheus.io/docs/practices/naming/):

* every name starts with ``kubetfx_`` and carries its unit (``_seconds``, ``_ratio`` is
  left out for metrics whose unit is the metric's own, such as accuracy);
* grouping keys are the pipeline (its lineage scope), the task and, for model metrics, the
  model name, never the run: a Pushgateway keeps a group until it is deleted, so a key per
  run would grow without end;
* label values are bounded: feature names, split names, slice names as the Evaluator
  names them (values of features in ``KUBETFX_REDACT_FEATURES`` already replaced by a
  stable stand-in, and checked again here), at most :data:`MAX_SERIES_PER_METRIC` each.

A Pushgateway that is down, slow or refusing never fails a task: :func:`push` gives up
after ``KUBETFX_PUSHGATEWAY_TIMEOUT`` seconds (default 2) and returns the reason, which the
task logs as a warning and records on its execution in lineage.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetfx.taskenv import PUSHGATEWAY as PUSHGATEWAY_ENV
from kubetfx.taskenv import PUSHGATEWAY_TIMEOUT as TIMEOUT_ENV

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
JOB = "kubetfx"
MAX_SERIES_PER_METRIC = 200


@dataclass(frozen=True)
class Family:
    """One metric name: its help text and the labels its samples carry (besides the
    grouping key's ``pipeline``, ``task`` and, for model metrics, ``model``)."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


def _families(*items: Family) -> dict[str, Family]:
    return {f.name: f for f in items}


# Every metric kubetfx exports. The dashboard and the alert rules name only these (a test
# checks it); docs/monitoring.md lists them.
FAMILIES: dict[str, Family] = _families(
    # Tasks (a pipeline's health is its tasks': the same in a cluster, where no process sees
    # a whole run, as locally)
    Family("kubetfx_task_duration_seconds", "Wall time of the task's last execution."),
    Family("kubetfx_task_succeeded", "1 when the task's last execution succeeded, else 0."),
    Family("kubetfx_task_last_run_timestamp_seconds", "When the task last ended (Unix time)."),
    Family("kubetfx_task_last_success_timestamp_seconds", "When the task last succeeded (Unix time)."),
    Family("kubetfx_task_last_failure_timestamp_seconds", "When the task last failed (Unix time)."),
    # Data
    Family("kubetfx_examples_rows", "Rows ExampleGen wrote, per split.", ("split",)),
    Family("kubetfx_examples_span", "The span ExampleGen read."),
    Family("kubetfx_data_anomalies", "Anomalies the ExampleValidator found."),
    Family("kubetfx_data_drifted_features", "Features whose drift is over its threshold."),
    Family(
        "kubetfx_data_drift_distance",
        "Drift distance of a feature from the previous span (L-infinity or Jensen-Shannon).",
        ("feature",),
    ),
    Family("kubetfx_data_drift_threshold", "The schema's drift threshold of a feature.", ("feature",)),
    Family("kubetfx_data_skew_distance", "Distance of a feature between splits.", ("feature",)),
    # Serving traffic
    Family(
        "kubetfx_serving_drift_distance",
        "Distance of a feature on serving traffic from the served model's training data.",
        ("feature", "measure"),
    ),
    Family(
        "kubetfx_serving_drift_threshold", "The threshold a serving-drift distance is held to.", ("measure",)
    ),
    Family("kubetfx_serving_drifted_features", "Features whose serving drift is over a threshold."),
    Family("kubetfx_serving_requests", "Serving requests in the window that was read."),
    Family("kubetfx_serving_anomalies", "Features of serving traffic the schema finds anomalous."),
    # Models
    Family("kubetfx_training_seconds", "Wall time of the Trainer's fit."),
    Family("kubetfx_training_metric", "The Trainer's last epoch metrics (loss, accuracy, ...).", ("metric",)),
    Family("kubetfx_evaluation_examples", "Labelled evaluation examples."),
    Family(
        "kubetfx_evaluation_metric",
        "An evaluation metric per slice (accuracy, AUC, precision, recall...).",
        ("slice", "metric"),
    ),
    Family("kubetfx_evaluation_slice_examples", "Evaluation examples per slice.", ("slice",)),
    Family(
        "kubetfx_evaluation_fairness_gap",
        "Largest gap of the fairness metric between slices of a feature.",
        ("feature", "metric"),
    ),
    Family("kubetfx_model_blessed", "1 when the Evaluator blessed the candidate model, else 0."),
    Family(
        "kubetfx_model_unblessed_runs",
        "Evaluations of the model in this pipeline, newest back, that did not bless it (0: the last did).",
    ),
    Family("kubetfx_model_pushed", "1 when the Pusher published a new version, else 0."),
    Family("kubetfx_model_pushed_version", "The version the model is served as."),
    Family(
        "kubetfx_serving_check_latency_seconds",
        "Latency of the Pusher's serving check, by quantile.",
        ("quantile",),
    ),
    # Canary rollouts (``kubetfx rollout``; pipeline "kubetfx-rollout", task "rollout")
    Family("kubetfx_rollout_canary_percent", "Share of traffic (percent) the canary version gets now."),
    Family("kubetfx_rollout_canary_version", "The version the model's last rollout moved traffic to."),
    Family("kubetfx_rollout_stable_version", "The version the last rollout compared the canary with."),
    Family(
        "kubetfx_rollout_rolled_back",
        "1 when the model's last rollout rolled its canary back automatically, else 0.",
    ),
    Family("kubetfx_rollout_decision_timestamp_seconds", "When the last rollout last decided (Unix time)."),
)


@dataclass
class Samples:
    """Samples of one push group: ``{metric name: {label tuple: value}}``."""

    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: Any, **labels: str) -> None:
        """Add one sample; non-numbers are left out, NaN and infinities too (Prometheus
        takes them, but a dashboard or alert reading them would say nothing true)."""
        family = FAMILIES[name]
        if sorted(labels) != sorted(family.labels):
            raise ValueError(f"{name} takes labels {family.labels}, not {tuple(labels)}")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return
        series = self.values.setdefault(name, {})
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        if key not in series and len(series) >= MAX_SERIES_PER_METRIC:
            self.dropped[name] = self.dropped.get(name, 0) + 1
            return
        series[key] = float(value)

    def __bool__(self) -> bool:
        return bool(self.values)

    def collect(self) -> Iterator[Any]:
        """The samples as prometheus_client metric families (a Collector, so the client's
        own exposition and push functions take them)."""
        from prometheus_client.core import GaugeMetricFamily

        for name in sorted(self.values):
            family = FAMILIES[name]
            gauge = GaugeMetricFamily(name, family.help, labels=family.labels)
            for key, value in sorted(self.values[name].items()):
                labels = dict(key)
                gauge.add_metric([labels[label] for label in family.labels], value)
            yield gauge


# ---------------------------------------------------------------------- from lineage metadata


def _parsed(value: Any) -> Any:
    """A property as lineage gives it back: structs as dicts, lists as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _number_map(value: Any) -> dict[str, float]:
    """A ``{name: number}`` property."""
    value = _parsed(value)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _listed(value: Any) -> list[Any] | None:
    """A list property; None when it is not one."""
    value = _parsed(value)
    return list(value) if isinstance(value, list | tuple) else None


def _struct(value: Any) -> Mapping[str, Any]:
    value = _parsed(value)
    return value if isinstance(value, Mapping) else {}


def safe_slice(name: str) -> str:
    """A slice name with the value of every feature in ``KUBETFX_REDACT_FEATURES`` replaced
    by its stand-in (the Evaluator already names slices so; this holds for any caller)."""
    from kubetfx.settings import is_redacted, redact_value

    parts = []
    for part in name.split(" & "):
        feature, sep, value = part.partition("=")
        if sep and is_redacted(feature) and not value.startswith("#"):
            value = redact_value(feature, value)
        parts.append(f"{feature}{sep}{value}")
    return " & ".join(parts)


def artifact_samples(samples: Samples, metadata: Mapping[str, Any]) -> None:
    """Add what one output artifact's lineage metadata says (by its ``kubetfx_type``)."""
    from kubetfx.artifacts.kinds import (
        ANOMALIES,
        BLESSING,
        EVALUATION,
        EXAMPLES,
        MODEL,
        PUSHED_MODEL,
        SERVING_DRIFT,
        TYPE_KEY,
    )

    kind = metadata.get(TYPE_KEY)
    if kind == EXAMPLES:
        for split, rows in _number_map(metadata.get("row_counts")).items():
            samples.add("kubetfx_examples_rows", rows, split=split)
        samples.add("kubetfx_examples_span", metadata.get("span"))
    elif kind == ANOMALIES:
        samples.add("kubetfx_data_anomalies", metadata.get("anomaly_count"))
        distances = _number_map(metadata.get("drift_distances"))
        thresholds = _number_map(metadata.get("drift_thresholds"))
        for feature, distance in distances.items():
            samples.add("kubetfx_data_drift_distance", distance, feature=feature)
        for feature, threshold in thresholds.items():
            samples.add("kubetfx_data_drift_threshold", threshold, feature=feature)
        for feature, distance in _number_map(metadata.get("skew_distances")).items():
            samples.add("kubetfx_data_skew_distance", distance, feature=feature)
        if distances:
            drifted = sum(1 for f, d in distances.items() if f in thresholds and d > thresholds[f])
            samples.add("kubetfx_data_drifted_features", drifted)
    elif kind == SERVING_DRIFT:
        _serving_drift_samples(samples, metadata)
    elif kind == MODEL:
        samples.add("kubetfx_training_seconds", metadata.get("wall_seconds"))
        for metric, value in _number_map(metadata.get("metrics")).items():
            samples.add("kubetfx_training_metric", value, metric=metric)
    elif kind == EVALUATION:
        samples.add("kubetfx_evaluation_examples", metadata.get("eval_examples"))
        samples.add("kubetfx_model_blessed", metadata.get("blessed"))
        for name, values in _struct(metadata.get("slice_metrics")).items():
            slice_name = safe_slice(str(name))
            for metric, value in _number_map(values).items():
                if metric == "examples":
                    samples.add("kubetfx_evaluation_slice_examples", value, slice=slice_name)
                else:
                    samples.add("kubetfx_evaluation_metric", value, slice=slice_name, metric=metric)
        metric = str(metadata.get("fairness_metric") or "")
        for feature, gap in _number_map(metadata.get("fairness_gaps")).items():
            samples.add("kubetfx_evaluation_fairness_gap", gap, feature=feature, metric=metric)
    elif kind == BLESSING:
        samples.add("kubetfx_model_blessed", metadata.get("blessed"))
    elif kind == PUSHED_MODEL:
        pushed = metadata.get("pushed")
        samples.add("kubetfx_model_pushed", pushed)
        if pushed in (1, True):
            samples.add("kubetfx_model_pushed_version", metadata.get("version"))
        quantiles = (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms"), ("0.99", "latency_p99_ms"))
        for quantile, key in quantiles:
            latency_ms = metadata.get(key)
            if isinstance(latency_ms, int | float):
                samples.add("kubetfx_serving_check_latency_seconds", latency_ms / 1000, quantile=quantile)


SERVING_PREDICTION = "__prediction__"  # the feature label of the predicted classes' distances


def _serving_drift_samples(samples: Samples, metadata: Mapping[str, Any]) -> None:
    """A ServingDrift's metadata: distances and the thresholds they were held to (those
    applied at the window's sample size), drifted features, requests and anomalies. A window
    too small to measure carries no distances, so nothing can alert on it."""
    samples.add("kubetfx_serving_requests", metadata.get("requests"))
    if "anomaly_count" in metadata:
        samples.add("kubetfx_serving_anomalies", metadata.get("anomaly_count"))
    distances = _struct(metadata.get("drift_distances"))
    for feature, measures in distances.items():
        for measure, value in _number_map(measures).items():
            samples.add("kubetfx_serving_drift_distance", value, feature=str(feature), measure=measure)
    for measure, value in _number_map(metadata.get("prediction_distances")).items():
        samples.add("kubetfx_serving_drift_distance", value, feature=SERVING_PREDICTION, measure=measure)
    if distances:
        for measure, value in _number_map(metadata.get("drift_thresholds")).items():
            samples.add("kubetfx_serving_drift_threshold", value, measure=measure)
        drifted = _listed(metadata.get("drifted_features"))
        if drifted is not None:
            samples.add("kubetfx_serving_drifted_features", len(drifted))


def model_of(outputs: Iterable[Mapping[str, Any]]) -> str:
    """The model name a task's outputs are about ("" for data tasks)."""
    for metadata in outputs:
        name = metadata.get("model_name")
        if name:
            return str(name)
    return ""


def task_samples(
    *, succeeded: bool, seconds: float | None, ended: float, outputs: Iterable[Mapping[str, Any]] = ()
) -> Samples:
    """A task's push: its outcome, its duration and what its outputs' metadata say."""
    samples = Samples()
    samples.add("kubetfx_task_succeeded", int(succeeded))
    samples.add("kubetfx_task_last_run_timestamp_seconds", ended)
    if seconds is not None:
        samples.add("kubetfx_task_duration_seconds", seconds)
    if succeeded:
        samples.add("kubetfx_task_last_success_timestamp_seconds", ended)
    else:
        samples.add("kubetfx_task_last_failure_timestamp_seconds", ended)
    for metadata in outputs:
        artifact_samples(samples, metadata)
    return samples


# ---------------------------------------------------------------------- pushing


def gateway_from_env() -> str:
    """The Pushgateway's URL from ``KUBETFX_PUSHGATEWAY`` ("" when metrics are off)."""
    return os.environ.get(PUSHGATEWAY_ENV, "").strip()


def timeout_from_env() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        log.warning("%s=%r is not a number of seconds: using %s", TIMEOUT_ENV, raw, DEFAULT_TIMEOUT_S)
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def push_task(
    *,
    pipeline: str,
    task: str,
    succeeded: bool,
    seconds: float | None,
    ended: float,
    outputs: Iterable[Mapping[str, Any]] = (),
    store: Any = None,
) -> str:
    """Push a task's metrics when it ends (see the module docstring); "" when pushed or when
    metrics are off, else why not. ``store``: the lineage store, for the unblessed streak."""
    if not gateway_from_env():
        return ""
    outputs = list(outputs)
    samples = task_samples(succeeded=succeeded, seconds=seconds, ended=ended, outputs=outputs)
    model = model_of(outputs)
    blessed = samples.values.get("kubetfx_model_blessed", {}).get(())
    if blessed == 1:
        samples.add("kubetfx_model_unblessed_runs", 0)
    elif blessed == 0 and store is not None and model:
        # This evaluation is not in lineage yet (a task pushes before it records): it and
        # the unblessed ones before it.
        try:
            from kubetfx.lineage.query import unblessed_runs

            samples.add("kubetfx_model_unblessed_runs", 1 + unblessed_runs(store, pipeline, model))
        except Exception as err:  # noqa: BLE001 - metrics never fail a task
            log.warning("metrics: the unblessed streak of %s could not be read: %s", model, err)
    return push(samples, grouping_key(pipeline, task, model))


def grouping_key(pipeline: str, task: str = "", model: str = "") -> dict[str, str]:
    """The group a push replaces metrics in: pipeline, task and model; never the run."""
    key = {"pipeline": pipeline}
    if task:
        key["task"] = task
    if model:
        key["model"] = model
    return key


def push(
    samples: Samples, group: Mapping[str, str], gateway: str | None = None, timeout: float | None = None
) -> str:
    """Push ``samples`` into ``group`` (replacing those metric names in it, keeping others:
    a failed run does not erase the last success). Returns "" when pushed or when metrics
    are off, else why not; never raises."""
    from kubetfx.settings import redact

    url = gateway if gateway is not None else gateway_from_env()
    if not url or not samples:
        return ""
    for name, count in samples.dropped.items():
        log.warning("metrics: %s has more than %d series; %d left out", name, MAX_SERIES_PER_METRIC, count)
    try:
        from prometheus_client import pushadd_to_gateway

        pushadd_to_gateway(
            url,
            job=JOB,
            registry=samples,
            grouping_key=dict(group),
            timeout=timeout if timeout is not None else timeout_from_env(),
        )
    except Exception as err:  # noqa: BLE001 - metrics never fail a task
        return f"metrics not pushed to {redact(url)}: {type(err).__name__}: {redact(str(err))}"
    return ""
