"""The reference training pipeline: wiring only; components say what, the pipeline says where.

Today it reads the data (ExampleGen); the data validation and training issues extend it
to StatisticsGen -> SchemaGen -> ExampleValidator -> Trainer -> Evaluator -> Pusher.
"""

from kfp import dsl
from kubetfx.components import example_gen

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"


@dsl.pipeline(
    name="kubetfx-training",
    description="Reads tabular CSV/Parquet data into split tf.Examples with lineage.",
)
def training(
    input_uri: str = PENGUINS,
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
) -> None:
    """The reference pipeline.

    Args:
        input_uri: CSV or Parquet file, folder, or ``{SPAN}`` pattern (default: the
            penguins data shipped in the ``palmerpenguins`` package).
        splits: Split names and hash buckets.
        partition_feature: Column that decides the split; empty hashes the whole row.
    """
    example_gen(input_uri=input_uri, splits=splits, partition_feature=partition_feature)
