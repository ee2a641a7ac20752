"""The names of files and folders inside each artifact: the on-disk contract, in one place.

Every executor that writes or reads an artifact's files takes these names from here, so a
reader can never look for a file under another name than its writer gave it. Where TFX
has a layout (Examples, statistics, schema, anomalies, model, blessing) it is TFX's.
"""

from __future__ import annotations

import os

# Examples (kubetfx.Examples): one folder per split.
SPLIT_PREFIX = "Split-"
EXAMPLES_FILE = "data_tfrecord-00000-of-00001.gz"  # gzip TFRecord of tf.Example: the contract
EXAMPLES_PATTERN = "data_tfrecord-*.gz"  # what readers accept (TFX may write several shards)
COLUMNAR_FILE = "data.parquet"  # the same rows, columnar: a faster read for kubetfx's own readers
SOURCE_ROWS_FILE = "source_rows.parquet"  # the input file, row and line each example came from

# Statistics (kubetfx.ExampleStatistics), schema (kubetfx.Schema), anomalies (kubetfx.ExampleAnomalies).
STATISTICS_FILE = "FeatureStats.pb"  # Split-<split>/: binary DatasetFeatureStatisticsList
SCHEMA_FILE = "schema.pbtxt"  # text Schema proto
ANOMALIES_FILE = "SchemaDiff.pb"  # Split-<split>/ and SERVING_ANOMALIES_DIR/: binary Anomalies
SERVING_ANOMALIES_DIR = "Serving"
DRIFT_FILE = "drift.json"

# Model (kubetfx.Model), evaluation (kubetfx.ModelEvaluation), blessing (kubetfx.ModelBlessing).
SERVING_DIR = "Format-Serving"  # the SavedModel a server loads
SAVED_MODEL_FILE = "saved_model.pb"
SUMMARY_FILE = "summary.json"
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"
REASONS_FILE = "reasons.json"

# ServingCheck (kubetfx.ServingCheck).
SERVING_CHECK_FILE = "serving_check.json"

# PushedModel (kubetfx.PushedModel).
PUSHED_FILE = "pushed.json"


def split_dir(artifact_dir: str, split: str) -> str:
    """The folder of one split of a per-split artifact (Examples, statistics, anomalies)."""
    return os.path.join(artifact_dir, f"{SPLIT_PREFIX}{split}")


def split_of(folder_name: str) -> str:
    """``Split-train`` -> ``train``."""
    return folder_name[len(SPLIT_PREFIX) :]


def train_first(splits: list[str]) -> list[str]:
    """Splits in the order kubetfx reads them: train, eval, then the others by name."""
    return sorted(splits, key=lambda n: (n != "train", n != "eval", n))
