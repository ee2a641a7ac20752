"""TFDV's side of serving drift: the training statistics and schema as the served model's
Trainer read them, the serving rows' statistics (one Arrow batch, typed by the schema), the
drift comparators' distances between the two, and the schema's anomalies at serving."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubetfx.components.serving_drift.logs import Row

from kubetfx.errors import KubetfxError

L_INFINITY = "l_infinity"
JENSEN_SHANNON = "jensen_shannon"
NEVER = 2.0  # L-infinity and Jensen-Shannon lie in [0, 1]: TFDV measures, never alarms
STATS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"
TRAIN_SPLIT = "train"


def load_schema(schema_dir: str) -> Any:
    """The Schema in a schema artifact's folder (``schema.pbtxt``, or that file); None for ""."""
    if not schema_dir:
        return None
    import tensorflow_data_validation as tfdv

    path = schema_dir if schema_dir.endswith(".pbtxt") else os.path.join(schema_dir, SCHEMA_FILE)
    if not os.path.exists(path):
        raise KubetfxError(f"{schema_dir}: no {SCHEMA_FILE}: the served model's schema is not there")
    return tfdv.load_schema_text(path)


def load_statistics(statistics_dir: str) -> Any:
    """The training split's statistics in a statistics artifact's folder."""
    import tensorflow_data_validation as tfdv

    path = os.path.join(statistics_dir, f"Split-{TRAIN_SPLIT}", STATS_FILE)
    if not os.path.exists(path):
        raise KubetfxError(f"{statistics_dir}: no Split-{TRAIN_SPLIT}/{STATS_FILE} (training statistics)")
    return tfdv.load_stats_binary(path)


def example_count(statistics: Any) -> int:
    """Examples in the first dataset (one split)."""
    return int(statistics.datasets[0].num_examples) if statistics.datasets else 0


def features(statistics: Any) -> dict[str, Any]:
    """The first dataset's features by name (FeatureNameStatistics)."""
    if not statistics.datasets:
        return {}
    return {".".join(f.path.step) if f.path.step else f.name: f for f in statistics.datasets[0].features}


def is_categorical(feature: Any) -> bool:
    """Whether TFDV keeps string statistics of the feature (its drift measure: L-infinity)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    return feature.type == statistics_pb2.FeatureNameStatistics.STRING or feature.HasField("string_stats")


def _arrow_type(name: str, values: list[Any], schema: Any, trained: Mapping[str, Any]) -> str:
    """``int``, ``float`` or ``bytes``: the schema's type, else training's, else the values'."""
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    if schema is not None:
        for feature in schema.feature:
            if feature.name == name:
                return {schema_pb2.INT: "int", schema_pb2.FLOAT: "float"}.get(feature.type, "bytes")
    if name in trained:
        types = statistics_pb2.FeatureNameStatistics
        return {types.INT: "int", types.FLOAT: "float"}.get(trained[name].type, "bytes")
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    return "bytes"


def _coerce(value: Any, kind: str) -> Any:
    """A value as the feature's type; None when it is not of it (the caller then keeps the
    whole feature as text, so its type shows as the anomaly it is)."""
    try:
        if kind == "int" and not isinstance(value, bool):
            number = float(value)
            if number.is_integer():
                return int(number)
        elif kind == "float" and not isinstance(value, bool):
            return float(value)
        elif kind == "bytes":
            return value if isinstance(value, str) else str(value)
    except (TypeError, ValueError):
        pass
    return None


def serving_statistics(rows: list[Row], schema: Any, trained: Mapping[str, Any]) -> Any:
    """TFDV statistics of the serving rows (one Arrow batch of list columns, as tf.Example
    decoding gives; a row without a feature is a null, one with no values an empty list)."""
    import pyarrow as pa
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    names = sorted({name for row in rows for name in row})
    arrays = []
    for name in names:
        kind = _arrow_type(name, [v for row in rows for v in row.get(name, [])], schema, trained)
        column = [None if name not in row else [_coerce(v, kind) for v in row[name]] for row in rows]
        if any(v is None for values in column if values is not None for v in values):
            kind = "bytes"  # not all of the feature's type: as text, so the type shows as an anomaly
            column = [None if name not in row else [str(v) for v in row[name]] for row in rows]
        if kind == "bytes":
            column = [None if values is None else [str(v).encode() for v in values] for values in column]
        arrow = {"int": pa.int64(), "float": pa.float32()}.get(kind, pa.binary())
        arrays.append(pa.array(column, type=pa.list_(arrow)))
    batch = pa.RecordBatch.from_arrays(arrays, names)
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


def measuring_schema(schema: Any, compared: list[str], trained: Mapping[str, Any]) -> Any:
    """A schema (the served model's, else one inferred from training) with a measuring
    drift comparator on each compared feature and none on any other."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    if schema is None:
        from tensorflow_metadata.proto.v0 import statistics_pb2

        statistics = statistics_pb2.DatasetFeatureStatisticsList()
        statistics.datasets.add().features.extend(trained.values())
        schema = tfdv.infer_schema(statistics)
    measured = schema_pb2.Schema()
    measured.CopyFrom(schema)
    for feature in measured.feature:
        feature.ClearField("drift_comparator")
        feature.ClearField("skew_comparator")
        if feature.name not in compared:
            continue
        if is_categorical(trained[feature.name]):
            feature.drift_comparator.infinity_norm.threshold = NEVER
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = NEVER
    return measured


def distances_from(serving: Any, train: Any, schema: Any, compared: list[str]) -> dict[str, dict[str, float]]:
    """TFDV's drift distance of each compared feature, serving against training statistics:
    ``{feature: {"l_infinity" or "jensen_shannon": value}}``."""
    import tensorflow_data_validation as tfdv

    measured = measuring_schema(schema, compared, features(train))
    environment = "SERVING" if "SERVING" in measured.default_environment else None  # inferred: none
    anomalies = tfdv.validate_statistics(
        serving, measured, environment=environment, previous_statistics=train
    )
    found: dict[str, dict[str, float]] = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for measurement in info.drift_measurements:
            measure = L_INFINITY if measurement.type == measurement.L_INFTY else JENSEN_SHANNON
            found.setdefault(name, {})[measure] = float(measurement.value)
    return found


def schema_anomalies(serving: Any, schema: Any) -> dict[str, str]:
    """The schema's verdict on the serving statistics, in its ``SERVING`` environment."""
    if schema is None:
        return {}
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    plain = schema_pb2.Schema()
    plain.CopyFrom(schema)
    for feature in plain.feature:  # drift is measured above, against training, not here
        feature.ClearField("drift_comparator")
        feature.ClearField("skew_comparator")
    anomalies = tfdv.validate_statistics(serving, plain, environment="SERVING")
    found = {}
    for key, info in anomalies.anomaly_info.items():
        name = ".".join(info.path.step) if info.HasField("path") and info.path.step else key
        found[name] = info.description or info.short_description
    return found
