"""What a validation becomes in Kubeflow Pipelines: the baseline it is measured against,
the ExampleAnomalies artifact's metadata, the HTML report, the UI's metrics, the output
parameters, and the failure that stops the pipeline (after publishing the outputs). The
component's body calls these; tests call them with plain ``kfp.dsl`` artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from kubetfx.components.example_validator.executor import (
    ValidationFailedError,
    ValidationResult,
    failure_message,
)

from kubetfx.artifacts.location import local_dir
from kubetfx.reports import anomalies_html, write_report

if TYPE_CHECKING:
    from kubetfx.lineage.query import StatisticsBaseline


def baseline_arguments(baseline: StatisticsBaseline | None) -> dict[str, Any]:
    """The drift baseline as :func:`~.executor.run`'s keyword arguments (none: no drift)."""
    if baseline is None:
        return {}
    return {
        "baseline_statistics_dir": local_dir(baseline.uri),
        "baseline_span": baseline.span,
        "baseline_run": baseline.run_id,
        "baseline_uri": baseline.uri,
        "source": baseline.source,
    }


def publish(
    result: ValidationResult, *, anomalies: Any, report: Any, metrics: Any, title: str
) -> tuple[int, bool]:
    """Fill the outputs from ``result``; returns (anomaly_count, valid) for the component's
    output parameters."""
    anomalies.metadata.update(result.metadata())
    write_report(report, anomalies_html(result, title=title))
    metrics.log_metric("anomaly_count", result.anomaly_count)
    metrics.log_metric("drifted_features", len(result.drifted))
    metrics.log_metric("skewed_features", len(result.skewed))
    return result.anomaly_count, result.anomaly_count == 0


def fail(result: ValidationResult, outputs: dict[str, Any]) -> NoReturn:
    """Publish the finished ``outputs`` (name -> artifact), then stop the task with the
    anomalies and where the report is."""
    from kubetfx.components.example_validator.publishing import publish_before_failing

    published = publish_before_failing(outputs)
    message = failure_message(result)
    if "report" in published:
        message += f"\nReport: {published['report']}"
    raise ValidationFailedError(message)
