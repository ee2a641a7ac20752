"""serving_drift: has the traffic a served model answers moved away from its training data?

Plain Python, no KFP. :func:`check` finds, through lineage, what the model served under a
name was trained and evaluated on (:mod:`kubetfx.lineage.serving`), then :func:`run` reads
a window of its request logs (:mod:`.logs`) and compares them with that:

* per feature, the serving window's TFDV statistics against the training split's with
  TFDV's drift comparators (L-infinity for categorical features, approximate
  Jensen-Shannon for numeric ones), every threshold out of reach so TFDV only measures;
* per feature, the population stability index over the training data's bins
  (:mod:`.distances`);
* the distribution of the predicted classes against the model's predictions on its
  evaluation split (the column sums of the Evaluator's confusion matrix): L-infinity and PSI;
* the serving statistics against the schema in its ``SERVING`` environment: anomalies.

A feature drifted when a distance is over its measure's threshold. A window with fewer than
``min_requests`` rows measures nothing and raises no drift: on a sample that small the
distances say more about chance than about the traffic. Features a request carries that
training never saw, and features training had that no request carries, are listed, never
a crash.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.components.serving_drift import distances, tfdv_stats
from kubetfx.components.serving_drift.logs import Row, read_requests, select_window
from kubetfx.components.serving_drift.tfdv_stats import JENSEN_SHANNON, L_INFINITY, TRAIN_SPLIT

from kubetfx.artifacts.kinds import SERVING_DRIFT, TYPE_KEY

PSI = "psi"
PREDICTION = "__prediction__"  # the feature label of the prediction distribution's distances
PREDICTION_PSI = "prediction_psi"
PREDICTION_L_INFINITY = "prediction_l_infinity"
COLUMNAR_FILE = "data.parquet"
RESULT_FILE = "serving_drift.json"


@dataclass
class Thresholds:
    """The distance each measure is held to: over it, a feature drifted."""

    psi: float = 0.2
    l_infinity: float = 0.25
    jensen_shannon: float = 0.3
    min_requests: int = 30

    def by_measure(self) -> dict[str, float]:
        """The thresholds as set."""
        return {PSI: self.psi, L_INFINITY: self.l_infinity, JENSEN_SHANNON: self.jensen_shannon}

    def at_sample_size(self, serving: int, training: int) -> dict[str, float]:
        """The thresholds distances are held to on samples this size: each as set, or the
        distance chance alone reaches one time in a thousand when that is larger (PSI and
        L-infinity; see :mod:`.distances`), so a small window cannot raise a false alarm."""
        limits = self.by_measure()
        limits[PSI] = max(limits[PSI], round(distances.psi_noise_floor(serving, training), 6))
        limits[L_INFINITY] = max(limits[L_INFINITY], round(distances.linf_noise_floor(serving, training), 6))
        return limits


@dataclass
class Training:
    """What the served model was trained and evaluated on, as local folders."""

    statistics_dir: str
    schema_dir: str = ""
    examples_dir: str = ""  # for exact PSI bins from the columnar copy; "" uses the histograms
    predicted: dict[str, float] = field(default_factory=dict)  # eval predictions by class
    description: str = ""


@dataclass
class DriftResult:
    """The answer (``drifted``, ``reason``) and everything behind it."""

    model_name: str = ""
    window: str = ""
    requests: int = 0
    rows: int = 0
    thresholds: Thresholds = field(default_factory=Thresholds)
    limits: dict[str, float] = field(default_factory=dict)  # thresholds at this sample size
    distances: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> measure -> value
    prediction: dict[str, float] = field(default_factory=dict)  # prediction_<measure> -> value
    predicted: dict[str, float] = field(default_factory=dict)  # serving predictions by class
    expected_predicted: dict[str, float] = field(default_factory=dict)  # evaluation's, by class
    anomalies: dict[str, str] = field(default_factory=dict)  # feature -> what is wrong
    unknown_features: list[str] = field(default_factory=list)
    missing_features: list[str] = field(default_factory=list)
    too_few: bool = False
    measured: bool = False
    baseline: str = ""
    note: str = ""  # why nothing was measured, when nothing was

    def over(self, measures: Mapping[str, float]) -> list[str]:
        """The measures over their thresholds (at this sample size)."""
        limits = self.limits or self.thresholds.by_measure()
        return [m for m, v in measures.items() if m in limits and not math.isnan(v) and v > limits[m]]

    @property
    def drifted_features(self) -> list[str]:
        return sorted(f for f, measures in self.distances.items() if self.over(measures))

    @property
    def prediction_drifted(self) -> bool:
        return bool(self.over(self.prediction))

    @property
    def drifted(self) -> bool:
        return self.measured and not self.too_few and bool(self.drifted_features or self.prediction_drifted)

    @property
    def reason(self) -> str:
        """One line: ``drifted: ...``, ``no drift: ...`` or why nothing was measured."""
        if self.note:
            return self.note
        if self.too_few:
            return (
                f"too few requests: {self.rows} in the window, at least {self.thresholds.min_requests} "
                "are needed to measure drift; no alarm"
            )
        if self.drifted:
            parts = []
            for feature in self.drifted_features:
                over = self.over(self.distances[feature])
                parts.append(
                    f"{feature} (" + ", ".join(f"{m} {self.distances[feature][m]:.3f}" for m in over) + ")"
                )
            if self.prediction_drifted:
                over = self.over(self.prediction)
                parts.append("predictions (" + ", ".join(f"{m} {self.prediction[m]:.3f}" for m in over) + ")")
            return f"drifted: {'; '.join(parts)} over {self.rows} requests"
        return f"no drift: {len(self.distances)} features within thresholds over {self.rows} requests"

    def metadata(self) -> dict[str, Any]:
        """The output artifact's metadata (lineage and the Prometheus metrics read it)."""
        return {
            TYPE_KEY: SERVING_DRIFT,
            "model_name": self.model_name,
            "window": self.window,
            "requests": self.requests,
            "rows": self.rows,
            "drifted": self.drifted,
            "reason": self.reason,
            "drift_distances": {f: _rounded(m) for f, m in sorted(self.distances.items())},
            "drift_thresholds": self.limits or self.thresholds.by_measure(),
            "set_thresholds": self.thresholds.by_measure(),
            "drifted_features": self.drifted_features,
            "prediction_distances": _rounded(self.prediction),
            "prediction_drifted": self.prediction_drifted,
            "serving_predictions": dict(self.predicted),
            "evaluation_predictions": dict(self.expected_predicted),
            "anomalies": dict(self.anomalies),
            "anomaly_count": len(self.anomalies),
            "unknown_features": list(self.unknown_features),
            "missing_features": list(self.missing_features),
            "too_few_requests": self.too_few,
            "min_requests": self.thresholds.min_requests,
            "baseline": self.baseline,
        }


def _rounded(measures: Mapping[str, float]) -> dict[str, float]:
    return {m: round(v, 6) for m, v in measures.items() if not math.isnan(v)}


# ---------------------------------------------------------------------- entry points


def check(
    logs_uri: str,
    model_name: str,
    output_dir: str,
    *,
    store: Any,
    thresholds: Thresholds | None = None,
    window: str = "",
    log_format: str = "auto",
) -> DriftResult:
    """Find the served model's training data in lineage, then :func:`run`.

    Nothing is measured (``drifted`` False, the reason says why) when no logs are given,
    lineage is off, or nothing is served under ``model_name``.
    """
    thresholds = thresholds or Thresholds()

    def nothing(note: str) -> DriftResult:
        result = DriftResult(model_name=model_name, window=window, thresholds=thresholds, note=note)
        _write(output_dir, result)
        return result

    if not logs_uri:
        return nothing("off: no serving logs given (serving_logs_uri is empty)")
    if store is None:
        return nothing("not measured: lineage is off (no KUBETFX_METADATA), the served model is unknown")
    from kubetfx.lineage.serving import served_training
    from kubetfx.storage import localize

    served = served_training(store, model_name)
    if served is None:
        return nothing(f"not measured: no model is served under the name {model_name!r} yet")
    if not served.statistics_uri:
        return nothing(f"not measured: lineage has no training statistics of {served.describe()}")
    training = Training(
        statistics_dir=localize(served.statistics_uri),
        schema_dir=localize(served.schema_uri) if served.schema_uri else "",
        examples_dir=_local_or_empty(served.examples_uri),
        predicted=served.predicted,
        description=served.describe(),
    )
    return run(
        logs_uri,
        training,
        output_dir,
        model_name=model_name,
        thresholds=thresholds,
        window=window,
        log_format=log_format,
    )


def _local_or_empty(uri: str) -> str:
    if not uri:
        return ""
    from kubetfx.storage import StorageError, localize

    try:
        return localize(uri)
    except StorageError:  # the examples are only for exact bins; the histograms will do
        return ""


def run(
    logs_uri: str,
    training: Training,
    output_dir: str,
    *,
    model_name: str = "",
    thresholds: Thresholds | None = None,
    window: str = "",
    log_format: str = "auto",
) -> DriftResult:
    """Compare the window of logged requests with the training data (module docstring)."""
    thresholds = thresholds or Thresholds()
    schema = tfdv_stats.load_schema(training.schema_dir)
    class_names = _class_names(schema)
    requests = select_window(read_requests(logs_uri, log_format, class_names), window)
    rows = [row for request in requests for row in request.rows]
    result = DriftResult(
        model_name=model_name,
        window=window,
        requests=len(requests),
        rows=len(rows),
        thresholds=thresholds,
        baseline=training.description or training.statistics_dir,
        expected_predicted=dict(training.predicted),
    )
    for request in requests:
        for predicted in request.predictions:
            if predicted:
                result.predicted[predicted] = result.predicted.get(predicted, 0) + 1
    train_stats = tfdv_stats.load_statistics(training.statistics_dir)
    trained = tfdv_stats.features(train_stats)
    serving_names = sorted({name for row in rows for name in row})
    expected_at_serving = _serving_features(schema, trained)
    result.unknown_features = sorted(set(serving_names) - (_schema_names(schema) | set(trained)))
    result.missing_features = sorted(expected_at_serving - set(serving_names)) if rows else []
    result.too_few = len(rows) < thresholds.min_requests
    if rows:
        serving_stats = tfdv_stats.serving_statistics(rows, schema, trained)
        result.anomalies = tfdv_stats.schema_anomalies(serving_stats, schema)
        if not result.too_few:
            compared = sorted(set(serving_names) & expected_at_serving & set(trained))
            result.distances = tfdv_stats.distances_from(serving_stats, train_stats, schema, compared)
            columns = _training_columns(training.examples_dir, compared)
            for feature in compared:
                value = _psi(feature, trained[feature], rows, columns.get(feature))
                result.distances.setdefault(feature, {})[PSI] = value
            result.limits = thresholds.at_sample_size(len(rows), tfdv_stats.example_count(train_stats))
            # Predictions are compared only when they name the evaluation's classes: ids the
            # label's domain could not name would otherwise read as a false drift. Their
            # samples differ in size from the features' (the evaluation split, the answered
            # requests), so their thresholds are measures of their own.
            if set(result.predicted) & set(training.predicted):
                served, evaluated = sum(result.predicted.values()), sum(training.predicted.values())
                at = thresholds.at_sample_size(int(served), int(evaluated))
                result.limits.update({PREDICTION_PSI: at[PSI], PREDICTION_L_INFINITY: at[L_INFINITY]})
                result.prediction = {
                    PREDICTION_L_INFINITY: distances.linf(training.predicted, result.predicted),
                    PREDICTION_PSI: distances.count_psi(training.predicted, result.predicted),
                }
    result.measured = True
    _write(output_dir, result)
    return result


def _write(output_dir: str, result: DriftResult) -> None:
    os.makedirs(output_dir, exist_ok=True)
    text = json.dumps(result.metadata(), indent=2, sort_keys=True, default=str)
    Path(output_dir, RESULT_FILE).write_text(text)


# ---------------------------------------------------------------------- training side


def _schema_names(schema: Any) -> set[str]:
    return {f.name for f in schema.feature} if schema is not None else set()


def _serving_features(schema: Any, trained: Mapping[str, Any]) -> set[str]:
    """Features a serving request should carry: the schema's, less those it keeps out of
    ``SERVING`` (the label); without a schema, every trained feature."""
    if schema is None:
        return set(trained)
    return {f.name for f in schema.feature if "SERVING" not in f.not_in_environment}


def _class_names(schema: Any) -> list[str]:
    """The label's classes in the order the built-in Trainer's model counts its
    ``class_ids`` (the label's string domain), for responses that give ids only."""
    if schema is None:
        return []
    domains = {d.name: list(d.value) for d in schema.string_domain}
    for feature in schema.feature:
        if "SERVING" in feature.not_in_environment:
            return domains.get(feature.domain) or list(feature.string_domain.value)
    return []


def _training_columns(examples_dir: str, features: list[str]) -> dict[str, list[Any]]:
    """Training values per feature from the Examples' columnar copy; {} when not at hand."""
    path = os.path.join(examples_dir, f"Split-{TRAIN_SPLIT}", COLUMNAR_FILE) if examples_dir else ""
    if not path or not os.path.exists(path):
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    present = [f for f in features if f in table.column_names]
    return {f: table.column(f).to_pylist() for f in present}


def _psi(feature: str, trained: Any, rows: list[Row], training_values: list[Any] | None) -> float:
    """PSI of one feature (see :mod:`.distances` for the bins)."""
    serving = [v for row in rows for v in row.get(feature, [])]
    if tfdv_stats.is_categorical(trained):
        if training_values is not None:
            counts: dict[str, float] = {}
            for value in training_values:
                for item in value if isinstance(value, list) else [value]:
                    if item is not None:
                        counts[str(item)] = counts.get(str(item), 0) + 1
        else:
            buckets = trained.string_stats.rank_histogram.buckets
            counts = {b.label: b.sample_count for b in buckets}
        return distances.categorical_psi(counts, (str(v) for v in serving))
    numbers = [float(v) for v in serving if _number(v)]
    if training_values is not None:
        flat = [float(x) for v in training_values for x in (v if isinstance(v, list) else [v]) if _number(x)]
        return distances.numeric_psi(flat, numbers)
    for histogram in trained.num_stats.histograms:
        if histogram.type == histogram.QUANTILES:
            buckets = [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
            return distances.histogram_psi(buckets, numbers)
    return math.nan


def _number(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- the operator's command


def summary(result: DriftResult) -> str:
    """What ``kubetfx serving-drift`` prints: the reason, what was compared, then one line
    per feature and measure (``*`` marks a distance over its threshold), predictions,
    anomalies and unknown or missing features."""
    lines = [result.reason]
    if result.baseline:
        lines.append(f"compared with: {result.baseline}")
    if result.measured:
        lines.append(f"window: {result.window or 'all'}: {result.requests} requests, {result.rows} rows")
    limits = result.limits or result.thresholds.by_measure()
    if result.distances or result.prediction:
        lines.append(f"{'feature':<24} {'measure':<15} {'distance':>9} {'threshold':>9}")
        rows = sorted(result.distances.items()) + (
            [(PREDICTION, result.prediction)] if result.prediction else []
        )
        for feature, measures in rows:
            over = set(result.over(measures))
            for measure, value in sorted(measures.items()):
                mark = " *" if measure in over else ""
                lines.append(
                    f"{feature:<24} {measure:<15} {value:>9.4f} {limits.get(measure, 0):>9.4f}{mark}"
                )
    for feature, text in sorted(result.anomalies.items()):
        lines.append(f"anomaly: {feature}: {text}")
    if result.unknown_features:
        lines.append("unknown to training: " + ", ".join(result.unknown_features))
    if result.missing_features:
        lines.append("in no request: " + ", ".join(result.missing_features))
    return "\n".join(lines)


def command(
    logs_uri: str,
    model_name: str,
    *,
    store: Any,
    output_dir: str,
    thresholds: Thresholds | None = None,
    window: str = "",
    log_format: str = "auto",
    as_json: bool = False,
    fail_on_drift: bool = False,
) -> tuple[str, int]:
    """``kubetfx serving-drift LOGS_URI --model NAME``: the text to print and the exit status
    (1 when ``fail_on_drift`` and the traffic drifted, else 0). ``output_dir`` receives
    ``serving_drift.json`` and ``report.html``."""
    from kubetfx.components.serving_drift import report_html

    result = check(
        logs_uri,
        model_name,
        output_dir,
        store=store,
        thresholds=thresholds,
        window=window,
        log_format=log_format,
    )
    Path(output_dir, "report.html").write_text(report_html.render(result), encoding="utf-8")
    text = json.dumps(result.metadata(), indent=2, sort_keys=True) if as_json else summary(result)
    return text, 1 if fail_on_drift and result.drifted else 0
