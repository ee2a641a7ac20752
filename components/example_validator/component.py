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
    beam_pipeline_args: list = [],  # noqa: B006 - KFP reads the default from the signature
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
        beam_pipeline_args: Beam options: given, the serving sample's statistics are
            computed by Beam workers; empty: in this process. See docs/beam.md.

    Returns:
        anomaly_count: Anomalous features over all splits.
        valid: True when there are no anomalies.
    """
    import os

    from kubetfx.components.example_validator import executor, outputs

    from kubetfx.artifacts.kinds import SCHEMA, STATISTICS, expect
    from kubetfx.lineage.query import previous_statistics
    from kubetfx.task import ENV_RUN, lineage_store, pipeline_name

    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    expect(SCHEMA, schema.metadata, "schema", schema.uri)
    store = lineage_store()
    run_id = os.environ.get(ENV_RUN, "")
    baseline = previous_statistics(store, pipeline_name(), statistics.uri, run_id=run_id) if store else None
    result = executor.run(
        statistics.path,
        schema.path,
        anomalies.path,
        span=int(statistics.metadata.get("span", 0)),
        serving_data_uri=serving_data_uri,
        beam_pipeline_args=beam_pipeline_args,
        **outputs.baseline_arguments(baseline),
    )
    title = f"Data validation of {statistics.uri}"
    published = outputs.publish(result, anomalies=anomalies, report=report, metrics=metrics, title=title)
    if result.anomaly_count and fail_on_anomalies:
        outputs.fail(result, {"anomalies": anomalies, "report": report, "metrics": metrics})
    return NamedTuple("Outputs", [("anomaly_count", int), ("valid", bool)])(*published)
