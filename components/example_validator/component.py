"""ExampleValidator's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from kubetfx.dsl import component


@component
def example_validator(
    statistics: Input[Artifact],
    schema: Input[Artifact],
    anomalies: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
    fail_on_anomalies: bool = True,
    serving_data_uri: str = "",
) -> NamedTuple("Outputs", [("anomaly_count", int), ("valid", bool)]):
    """Checks every split against the schema, drift against earlier data, skew against serving.

    Drift is measured against the statistics of the previous span of the same pipeline
    (or, without spans, of the previous different data), found through ML Metadata;
    every feature's distance is recorded on every run (``kubetfx drift PIPELINE``).

    Args:
        statistics: ExampleStatistics from StatisticsGen.
        schema: Schema from SchemaGen.
        anomalies: Output ExampleAnomalies: ``Split-<name>/SchemaDiff.pb`` and ``drift.json``.
        report: Output HTML report of anomalies, drift and skew.
        metrics: Output metrics: anomaly count, drifted and skewed feature counts.
        fail_on_anomalies: Stop the pipeline on any anomaly (default), naming each
            feature and what is wrong; false records them and continues.
        serving_data_uri: A CSV/Parquet sample of serving data, for training/serving skew
            (and validated in the SERVING environment).

    Returns:
        anomaly_count: Anomalous features over all splits.
        valid: True when there are no anomalies.
    """
    from kubetfx.components.example_validator import executor

    from kubetfx.lineage.query import previous_statistics
    from kubetfx.reports import anomalies_html
    from kubetfx.storage import localize
    from kubetfx.task import lineage_store, pipeline_name
    from kubetfx.types import SCHEMA, STATISTICS, expect

    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    expect(SCHEMA, schema.metadata, "schema", schema.uri)
    store = lineage_store()
    baseline = previous_statistics(store, pipeline_name(), statistics.uri) if store else None
    result = executor.run(
        statistics.path,
        schema.path,
        anomalies.path,
        baseline_statistics_dir=localize(baseline[0]) if baseline else "",
        baseline_span=baseline[1] if baseline else None,
        span=int(statistics.metadata.get("span", 0)),
        serving_data_uri=serving_data_uri,
    )
    anomalies.metadata.update(result.metadata())
    with open(report.path, "w") as f:
        f.write(
            anomalies_html(
                result.anomalies,
                result.drift,
                result.skew,
                result.drift_thresholds,
                result.baseline,
                title=f"Data validation of {statistics.uri}",
            )
        )
    metrics.log_metric("anomaly_count", result.anomaly_count)
    metrics.log_metric("drifted_features", len(result.drifted))
    metrics.log_metric("skewed_features", len(result.skewed))
    if result.anomaly_count and fail_on_anomalies:
        raise executor.ValidationFailedError(executor.failure_message(result))
    outputs = NamedTuple("Outputs", [("anomaly_count", int), ("valid", bool)])
    return outputs(result.anomaly_count, result.anomaly_count == 0)
