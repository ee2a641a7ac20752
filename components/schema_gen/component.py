"""SchemaGen's KFP interface: the typed signature is the spec; the body calls the executor."""

from kfp.dsl import Artifact, Input, Output

from kubetfx.dsl import component


@component
def schema_gen(
    statistics: Input[Artifact],
    schema: Output[Artifact],
    schema_file: str = "",
    label_key: str = "",
):
    """Infers a schema from the train split's statistics, or imports a curated schema file.

    Args:
        statistics: ExampleStatistics from StatisticsGen.
        schema: Output Schema (``schema.pbtxt``), kind ``kubetfx.Schema``.
        schema_file: A curated schema to use instead of inferring one: a path, or
            ``pkg://kubetfx.schemas/penguins/schema.pbtxt`` for one shipped with kubetfx.
        label_key: The label: required in the TRAINING environment, absent in SERVING.
    """
    from kubetfx.components.schema_gen import executor

    from kubetfx.types import STATISTICS, expect

    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    result = executor.run(statistics.path, schema.path, schema_file=schema_file, label_key=label_key)
    schema.metadata.update(result.metadata())
