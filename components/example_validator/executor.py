"""ExampleValidator: anomalies of every split against the schema, drift against earlier
statistics of the same pipeline, and skew against a serving-data sample.

Every feature's drift (and skew) distance is measured on every run, not only where the
schema sets a threshold: features without a comparator get a measuring one (L-infinity
for categorical, approximate Jensen-Shannon divergence for numeric) whose threshold can
never trip, so the distances form a time series (``kubetfx drift``) while only the
schema's thresholds decide anomalies.

Layout written: ``Split-<split>/SchemaDiff.pb`` (binary Anomalies), ``Serving/SchemaDiff.pb``
when a serving sample is given, and ``drift.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import KubetfxError
from kubetfx.types import ANOMALIES, TYPE_KEY

ANOMALIES_FILE = "SchemaDiff.pb"
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

    def problems(self) -> list[str]:
        """One line per anomalous feature: where, which feature, what is wrong."""
        lines = []
        for split, anomalies in self.anomalies.items():
            for feature, info in sorted(anomalies.anomaly_info.items()):
                detail = "; ".join(r.description for r in info.reason) or info.description
                lines.append(f"{split}: feature {feature!r}: {info.short_description} ({detail})")
            if anomalies.HasField("dataset_anomaly_info"):
                info = anomalies.dataset_anomaly_info
                lines.append(f"{split}: dataset: {info.short_description} ({info.description})")
        return lines

    @property
    def anomaly_count(self) -> int:
        return len(self.problems())

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
            "anomalous_features": sorted({p.split("'")[1] for p in self.problems() if "feature '" in p}),
            "drifted_features": self.drifted,
            "skewed_features": self.skewed,
            "drift_distances": dict(self.drift),
            "drift_thresholds": dict(self.drift_thresholds),
            "skew_distances": dict(self.skew),
            "baseline_statistics": self.baseline,
            "baseline_span": -1 if self.baseline_span is None else self.baseline_span,
            "span": self.span,
        }


def _kind(feature: Any) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2

    return "categorical" if feature.type == schema_pb2.BYTES or feature.HasField("domain") else "numeric"


def measuring_schema(schema: Any) -> Any:
    """A copy of ``schema`` with a drift and skew comparator on every feature."""
    measured = type(schema)()
    measured.CopyFrom(schema)
    for feature in measured.feature:
        comparators = [feature.drift_comparator]
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
    span: int = 0,
    serving_data_uri: str = "",
) -> ValidationResult:
    """Validate every split; measure drift against the baseline and skew against serving data."""
    import tensorflow_data_validation as tfdv
    from kubetfx.components.example_gen.executor import read_table
    from kubetfx.components.schema_gen import executor as schemas
    from kubetfx.components.statistics_gen import executor as stats

    schema = schemas.load(schema_dir)
    measured = measuring_schema(schema)
    result = ValidationResult(
        drift_thresholds=_thresholds(schema, "drift_comparator"),
        skew_thresholds=_thresholds(schema, "skew_comparator"),
        baseline=baseline_statistics_dir,
        baseline_span=baseline_span,
        span=span,
    )
    splits = stats.splits_of(statistics_dir)
    if not splits:
        raise KubetfxError(f"{statistics_dir}: no statistics to validate")
    reference = "train" if "train" in splits else splits[0]
    serving = None
    if serving_data_uri:
        serving = stats.statistics_of_table(read_table(serving_data_uri), "serving")
    for split in splits:
        current = stats.load(statistics_dir, split)
        if split == reference:
            previous = stats.load(baseline_statistics_dir, split) if baseline_statistics_dir else None
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
        _write(Path(output_dir, f"Split-{split}", ANOMALIES_FILE), anomalies)
    if serving is not None:
        result.anomalies["serving"] = tfdv.validate_statistics(serving, schema, environment="SERVING")
        _write(Path(output_dir, "Serving", ANOMALIES_FILE), result.anomalies["serving"])
    Path(output_dir, "drift.json").write_text(json.dumps(result.metadata(), indent=2, sort_keys=True))
    return result


def _write(path: Path, anomalies: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(anomalies.SerializeToString())


def failure_message(result: ValidationResult) -> str:
    """The message a failed validation stops the pipeline with."""
    problems = result.problems()
    head = f"data validation found {len(problems)} anomal{'y' if len(problems) == 1 else 'ies'}"
    return (
        head
        + ":\n  "
        + "\n  ".join(problems)
        + (
            "\nFix the data, or accept the change into the schema (kubetfx schema diff), "
            "or rerun with fail_on_anomalies=false to record and continue."
        )
    )
