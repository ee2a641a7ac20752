"""ExampleValidator: anomalies of every split against the schema, drift against earlier
statistics of the same pipeline, and skew against a serving-data sample.

Every feature's drift (and skew) distance is measured on every run, not only where the
schema sets a threshold: features without a comparator get a measuring one (L-infinity
for categorical, approximate Jensen-Shannon divergence for numeric) whose threshold can
never trip, so the distances form a time series (``kubetfx drift``) while only the
schema's thresholds decide anomalies.

Layout written: :mod:`kubetfx.artifacts.anomalies` (``Split-<split>/SchemaDiff.pb``,
``Serving/SchemaDiff.pb`` when a serving sample is given, and ``drift.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubetfx.artifacts import anomalies as anomalies_artifact
from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics as stats
from kubetfx.artifacts.kinds import ANOMALIES, TYPE_KEY
from kubetfx.artifacts.tabular import scan_input
from kubetfx.errors import KubetfxError
from kubetfx.settings import redact

NEVER = 2.0  # both distances lie in [0, 1]


class ValidationFailedError(KubetfxError):
    """The data does not match its schema, or drifted or skewed past a threshold."""


@dataclass
class ValidationResult:
    """Anomalies per split and the distances measured."""

    anomalies: dict[str, Any] = field(default_factory=dict)  # split -> Anomalies proto
    drift: dict[str, float] = field(default_factory=dict)
    drift_thresholds: dict[str, float] = field(default_factory=dict)
    skew: dict[str, float] = field(default_factory=dict)
    skew_thresholds: dict[str, float] = field(default_factory=dict)
    baseline: str = ""
    baseline_span: int | None = None
    span: int = 0
    baseline_run: str = ""  # the earlier run whose statistics are the baseline
    source: str = ""  # the data source of the checked statistics (and of the baseline)
    new_features: list[str] = field(default_factory=list)  # no baseline to compare with
    gone_features: list[str] = field(default_factory=list)  # in the baseline, not now

    def findings(self) -> list[tuple[str, str, str]]:
        """(split, feature or "" for the dataset, description) for every anomaly."""
        found = []
        for split, anomalies in self.anomalies.items():
            for key, info in sorted(anomalies.anomaly_info.items()):
                detail = "; ".join(r.description for r in info.reason) or info.description
                found.append((split, feature_name(key, info), f"{info.short_description} ({detail})"))
            if anomalies.HasField("dataset_anomaly_info"):
                info = anomalies.dataset_anomaly_info
                found.append((split, "", f"{info.short_description} ({info.description})"))
        return found

    def problems(self) -> list[str]:
        """One line per anomaly: where, which feature, what is wrong."""
        return [
            f"{split}: feature {feature!r}: {text}" if feature else f"{split}: dataset: {text}"
            for split, feature, text in self.findings()
        ]

    @property
    def anomaly_count(self) -> int:
        return len(self.findings())

    def baseline_text(self) -> str:
        """Which statistics drift was measured against, for messages and reports."""
        if not self.baseline:
            return "no baseline: no earlier statistics of this data source"
        where = f"run {self.baseline_run}" if self.baseline_run else self.baseline
        source = f"source {redact(self.source)}, " if self.source else ""
        return f"statistics of {where} ({source}span {self.baseline_span})"

    @property
    def drifted(self) -> list[str]:
        return sorted(
            f for f, v in self.drift.items() if f in self.drift_thresholds and v > self.drift_thresholds[f]
        )

    @property
    def skewed(self) -> list[str]:
        return sorted(
            f for f, v in self.skew.items() if f in self.skew_thresholds and v > self.skew_thresholds[f]
        )

    def metadata(self) -> dict[str, Any]:
        """Artifact metadata (the drift time series reads ``drift_distances``)."""
        return {
            TYPE_KEY: ANOMALIES,
            "anomaly_count": self.anomaly_count,
            "anomalous_features": sorted({feature for _, feature, _ in self.findings() if feature}),
            "drifted_features": self.drifted,
            "skewed_features": self.skewed,
            "drift_distances": dict(self.drift),
            "drift_thresholds": dict(self.drift_thresholds),
            "skew_distances": dict(self.skew),
            "baseline_statistics": self.baseline,
            "baseline_span": -1 if self.baseline_span is None else self.baseline_span,
            "baseline_run": self.baseline_run,
            "source": redact(self.source),
            "new_features": list(self.new_features),
            "gone_features": list(self.gone_features),
            "span": self.span,
        }


def feature_name(key: str, info: Any) -> str:
    """The feature an anomaly is about, as the data names it.

    TFDV keys ``anomaly_info`` by a serialized path that quotes names with spaces,
    parentheses or slashes (``'Delta 15 N (o/oo)'``); the path steps hold the real name.
    """
    if info.HasField("path") and info.path.step:
        return ".".join(info.path.step)
    return key


def _kind(feature: Any) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2

    return "categorical" if feature.type == schema_pb2.BYTES or feature.HasField("domain") else "numeric"


def measuring_schema(schema: Any, without_baseline: frozenset[str] = frozenset()) -> Any:
    """A copy of ``schema`` with a drift and skew comparator on every feature.

    Features in ``without_baseline`` (absent from the baseline statistics) get no drift
    comparator at all: there is nothing to compare them with, which TFDV would otherwise
    report as a "previous data missing" anomaly. They are reported as new instead.
    """
    measured = type(schema)()
    measured.CopyFrom(schema)
    for feature in measured.feature:
        if feature.name in without_baseline:
            feature.ClearField("drift_comparator")
        comparators = [] if feature.name in without_baseline else [feature.drift_comparator]
        if "SERVING" not in feature.not_in_environment:  # the label is absent at serving
            comparators.append(feature.skew_comparator)
        for comparator in comparators:
            if comparator.HasField("infinity_norm") or comparator.HasField("jensen_shannon_divergence"):
                continue
            if _kind(feature) == "categorical":
                comparator.infinity_norm.threshold = NEVER
            else:
                comparator.jensen_shannon_divergence.threshold = NEVER
    return measured


def _thresholds(schema: Any, which: str) -> dict[str, float]:
    found = {}
    for feature in schema.feature:
        comparator = getattr(feature, which)
        for kind in ("infinity_norm", "jensen_shannon_divergence"):
            if comparator.HasField(kind):
                found[feature.name] = getattr(comparator, kind).threshold
    return found


def _measurements(anomalies: Any, which: str) -> dict[str, float]:
    values = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        measurements = getattr(info, which)
        if measurements:
            values[name] = round(float(measurements[0].value), 6)
    return values


def run(
    statistics_dir: str,
    schema_dir: str,
    output_dir: str,
    *,
    baseline_statistics_dir: str = "",
    baseline_span: int | None = None,
    baseline_run: str = "",
    baseline_uri: str = "",
    source: str = "",
    span: int = 0,
    serving_data_uri: str = "",
    beam_pipeline_args: Sequence[str] | str = (),
) -> ValidationResult:
    """Validate every split; measure drift against the baseline and skew against serving data.

    ``beam_pipeline_args``: when given, the serving sample's statistics are computed on
    Beam with these options (:mod:`kubetfx.beam`), else in this process.

    A feature the baseline statistics lack is new: listed in ``new_features``, never an
    anomaly. A feature the baseline has and the data lacks is listed in ``gone_features``;
    whether that is an anomaly is the schema's call (its presence constraints), not drift's.
    """
    import tensorflow_data_validation as tfdv

    # The serving sample's statistics are computed as StatisticsGen computes a split's: the
    # ExampleValidator's one declared neighbour (tests/unit/test_import_direction.py).
    from kubetfx.components.statistics_gen.executor import statistics_of_table

    from kubetfx.beam import split_args

    schema = schema_artifact.load(schema_dir)
    result = ValidationResult(
        drift_thresholds=_thresholds(schema, "drift_comparator"),
        skew_thresholds=_thresholds(schema, "skew_comparator"),
        baseline=baseline_uri or baseline_statistics_dir,
        baseline_span=baseline_span,
        baseline_run=baseline_run,
        source=source,
        span=span,
    )
    splits = stats.splits_of(statistics_dir)
    if not splits:
        raise KubetfxError(f"{statistics_dir}: no statistics to validate")
    reference = "train" if "train" in splits else splits[0]
    serving = None
    if serving_data_uri:
        if split_args(beam_pipeline_args):
            from kubetfx.components.statistics_gen import beam_path

            serving = beam_path.statistics_of_input(serving_data_uri, "serving", beam_pipeline_args)
        else:
            # Read batch by batch: a serving sample of any size takes one batch of memory.
            serving = statistics_of_table(scan_input(serving_data_uri), "serving")
    for split in splits:
        current = stats.load(statistics_dir, split)
        if split == reference:
            previous = stats.load(baseline_statistics_dir, split) if baseline_statistics_dir else None
            measured = measuring_schema(schema)
            if previous is not None:
                now, before = _feature_names(current), _feature_names(previous)
                result.new_features = sorted(now - before)
                result.gone_features = sorted(before - now)
                measured = measuring_schema(schema, frozenset(result.new_features))
            anomalies = tfdv.validate_statistics(
                current,
                measured,
                environment="TRAINING",
                previous_statistics=previous,
                serving_statistics=serving,
            )
            result.drift = _measurements(anomalies, "drift_measurements")
            result.skew = _measurements(anomalies, "skew_measurements")
        else:
            anomalies = tfdv.validate_statistics(current, schema, environment="TRAINING")
        result.anomalies[split] = anomalies
        anomalies_artifact.write(output_dir, split, anomalies)
    if serving is not None:
        result.anomalies["serving"] = tfdv.validate_statistics(serving, schema, environment="SERVING")
        anomalies_artifact.write_serving(output_dir, result.anomalies["serving"])
    anomalies_artifact.write_drift(output_dir, result.metadata())
    return result


def _feature_names(statistics: Any) -> set[str]:
    """Feature names in a statistics proto (its first dataset: one split)."""
    if not statistics.datasets:
        return set()
    return {".".join(f.path.step) if f.path.step else f.name for f in statistics.datasets[0].features}


def failure_message(result: ValidationResult) -> str:
    """The message a failed validation stops the pipeline with."""
    problems = result.problems()
    head = f"data validation found {len(problems)} anomal{'y' if len(problems) == 1 else 'ies'}"
    return (
        head
        + ":\n  "
        + "\n  ".join(problems)
        + (f"\nDrift was measured against {result.baseline_text()}." if result.baseline else "")
        + (
            "\nFix the data, or accept the change into the schema (kubetfx schema diff), "
            "or rerun with fail_on_anomalies=false to record and continue."
        )
    )
