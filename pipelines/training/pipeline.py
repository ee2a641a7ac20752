"""The reference training pipeline: wiring only; components say what, the pipeline says where.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Trainer today; the
Evaluator and Pusher come next.
"""

from kfp import dsl
from kubetfx.components import example_gen, example_validator, schema_gen, statistics_gen, trainer

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PENGUINS_SCHEMA = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


@dsl.pipeline(
    name="kubetfx-training",
    description="Reads tabular CSV/Parquet data, validates it with TFDV and trains a Keras model on it.",
)
def training(
    input_uri: str = PENGUINS,
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
    schema_file: str = PENGUINS_SCHEMA,
    label_key: str = "species",
    fail_on_anomalies: bool = True,
    serving_data_uri: str = "",
    epochs: int = 30,
    module_file: str = "",
) -> None:
    """The reference pipeline.

    Args:
        input_uri: CSV or Parquet file, folder, or ``{SPAN}`` pattern (default: the
            penguins data shipped in the ``palmerpenguins`` package).
        splits: Split names and hash buckets.
        partition_feature: Column that decides the split; empty hashes the whole row.
        schema_file: A curated schema to validate against (default: the penguins one
            shipped in ``kubetfx.schemas``); empty infers a schema from the data.
        label_key: The label column (required in training, absent at serving).
        fail_on_anomalies: Stop the pipeline when the data has anomalies, drifted or skewed.
        serving_data_uri: Optional serving-data sample for the skew check.
        epochs: Training epochs of the built-in model.
        module_file: A Python file with ``run_fn(fn_args)`` to train your own model.
    """
    gen = example_gen(input_uri=input_uri, splits=splits, partition_feature=partition_feature)
    stats = statistics_gen(examples=gen.outputs["examples"])
    schema = schema_gen(statistics=stats.outputs["statistics"], schema_file=schema_file, label_key=label_key)
    validated = example_validator(
        statistics=stats.outputs["statistics"],
        schema=schema.outputs["schema"],
        fail_on_anomalies=fail_on_anomalies,
        serving_data_uri=serving_data_uri,
    )
    # Never train on data that failed validation: the trainer waits for the validator.
    trainer(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        statistics=stats.outputs["statistics"],
        label_key=label_key,
        epochs=epochs,
        module_file=module_file,
    ).after(validated)
