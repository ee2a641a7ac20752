"""SchemaGen's KFP interface: the typed signature is the spec; the body calls the executor."""

from kfp.dsl import HTML, Artifact, Input, Output

from kubetfx.dsl import component


@component
def schema_gen(
    statistics: Input[Artifact],
    schema: Output[Artifact],
    report: Output[HTML],
    schema_file: str = "",
    label_key: str = "",
    exclude_splits: list = [],  # noqa: B006 - KFP reads the default from the signature
    max_string_domain_size: int = 100,
    drift_threshold: float = 0.0,
):
    """Infers a schema from the statistics of every split, or imports a curated schema file.

    String features whose values never form a closed set (IDs, free text, dates and
    timestamps, values seen too rarely to be sure) get no closed domain, so new values of
    them are no anomaly; the report and the schema's metadata name each of them.

    Args:
        statistics: ExampleStatistics from StatisticsGen.
        schema: Output Schema (``schema.pbtxt``), kind ``kubetfx.Schema``.
        report: Output HTML page: splits used, each feature's type and domain, and the
            features left without a closed domain with the reason.
        schema_file: A curated schema to use instead of inferring one: a path, or
            ``pkg://kubetfx.schemas/penguins/schema.pbtxt`` for one shipped with kubetfx.
        label_key: The label: required in the TRAINING environment, absent in SERVING.
        exclude_splits: Splits not to infer from (as TFX's SchemaGen), e.g. ``["eval"]``;
            default: every split.
        max_string_domain_size: A string feature with more distinct values gets no
            closed domain (TFDV's ``infer_schema`` option).
        drift_threshold: With a value in (0, 1], a drift comparator on every feature that
            has none (Jensen-Shannon divergence for numbers, L-infinity distance for
            categories), checked by ExampleValidator against the previous data; 0: none.
    """
    from kubetfx.components.schema_gen import executor, outputs

    from kubetfx.artifacts.kinds import STATISTICS, expect

    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    result = executor.run(
        statistics.path,
        schema.path,
        schema_file=schema_file,
        label_key=label_key,
        exclude_splits=exclude_splits,
        max_string_domain_size=max_string_domain_size,
        drift_threshold=drift_threshold,
    )
    outputs.publish(result, schema=schema, report=report, title=f"Schema of {statistics.uri}")
