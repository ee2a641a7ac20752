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

    Drift is measured against the statistics the previous run of the same data source
    (ExampleGen's input URI) used in this pipeline, found through ML Metadata: of the
    newest earlier span, else of the same span; never another source's. A feature
    without a baseline is reported as new, never as an anomaly. Every feature's distance
    is recorded on every run (``kubetfx drift PIPELINE``).

    Args:
        statistics: ExampleStatistics from StatisticsGen.
        schema: Schema from SchemaGen.
        anomalies: Output ExampleAnomalies: ``Split-<name>/SchemaDiff.pb`` and ``drift.json``.
        report: Output HTML report of anomalies, drift and skew.
        metrics: Output metrics: anomaly count, drifted and skewed feature counts.
        fail_on_anomalies: Stop the pipeline on any anomaly (default), naming each
            feature and what is wrong; the anomalies, report and metrics are still
            published and recorded in lineage. False records them and continues.
        serving_data_uri: A CSV/Parquet sample of serving data, for training/serving skew
            (and validated in the SERVING environment).

    Returns:
        anomaly_count: Anomalous features over all splits.
        valid: True when there are no anomalies.
    """
    import os

    from kubetfx.components.example_validator import executor

    from kubetfx.artifacts.kinds import SCHEMA, STATISTICS, expect
    from kubetfx.artifacts.location import local_dir
    from kubetfx.lineage.query import previous_statistics
    from kubetfx.reports import anomalies_html, write_report
    from kubetfx.task import ENV_RUN, lineage_store, pipeline_name

    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    expect(SCHEMA, schema.metadata, "schema", schema.uri)
    store = lineage_store()
    baseline = (
        previous_statistics(store, pipeline_name(), statistics.uri, run_id=os.environ.get(ENV_RUN, ""))
        if store
        else None
    )
    result = executor.run(
        statistics.path,
        schema.path,
        anomalies.path,
        baseline_statistics_dir=local_dir(baseline.uri) if baseline else "",
        baseline_span=baseline.span if baseline else None,
        baseline_run=baseline.run_id if baseline else "",
        baseline_uri=baseline.uri if baseline else "",
        source=baseline.source if baseline else "",
        span=int(statistics.metadata.get("span", 0)),
        serving_data_uri=serving_data_uri,
    )
    anomalies.metadata.update(result.metadata())
    write_report(report, anomalies_html(result, title=f"Data validation of {statistics.uri}"))
    metrics.log_metric("anomaly_count", result.anomaly_count)
    metrics.log_metric("drifted_features", len(result.drifted))
    metrics.log_metric("skewed_features", len(result.skewed))
    if result.anomaly_count and fail_on_anomalies:
        from kubetfx.components.example_validator.publishing import publish_before_failing

        published = publish_before_failing({"anomalies": anomalies, "report": report, "metrics": metrics})
        message = executor.failure_message(result)
        if "report" in published:
            message += f"\nReport: {published['report']}"
        raise executor.ValidationFailedError(message)
    outputs = NamedTuple("Outputs", [("anomaly_count", int), ("valid", bool)])
    return outputs(result.anomaly_count, result.anomaly_count == 0)
