"""Serving logs for the serving-drift tests, written in their loggers' documented formats
from the penguins eval split: stand-ins for a live KServe logger's sink (JSON lines of
structured-mode CloudEvents) and for TF Serving's request log (TFRecords of PredictionLog).

The served model's answers are the eval split's true species: a model right on every
request, so the serving prediction distribution is the label distribution.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts.examples import split_files
from kubetfx.tfrecord import read_tfrecord_gz

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"
LABEL = "species"
START = 1_800_000_000  # the first request's time (Unix seconds); one request a minute


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """ExampleGen, StatisticsGen and SchemaGen (curated schema) on penguins, once."""
    root = tmp_path_factory.mktemp("served-data")
    example_gen.run(PENGUINS, str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    schema_gen.run(str(root / "statistics"), str(root / "schema"), schema_file=CURATED, label_key=LABEL)
    return {k: str(root / k) for k in ("examples", "statistics", "schema")}


def eval_requests(
    examples_dir: str, change: Callable[[object], None] | None = None
) -> list[tuple[bytes, str]]:
    """(serialized tf.Example without the label, true species) of each eval example;
    ``change`` edits each Example first."""
    from tensorflow.core.example import example_pb2

    found = []
    for path in split_files(examples_dir, "eval"):
        for record in read_tfrecord_gz(path):
            example = example_pb2.Example.FromString(record)
            species = example.features.feature[LABEL].bytes_list.value[0].decode()
            del example.features.feature[LABEL]
            if change is not None:
                change(example)
            found.append((example.SerializeToString(), species))
    return found


def shift_mass(example: object) -> None:
    """+2500 g on body_mass_g (capped inside the schema's range), as the data-drift tests do."""
    values = example.features.feature["body_mass_g"].int64_list.value  # type: ignore[attr-defined]
    for i, value in enumerate(values):
        values[i] = min(value + 2500, 6999)


def as_row(serialized: bytes) -> dict[str, object]:
    """The example as a KServe v1 row of raw features (a missing value as null)."""
    from tensorflow.core.example import example_pb2

    row: dict[str, object] = {}
    for name, feature in example_pb2.Example.FromString(serialized).features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        values = [v.decode() if isinstance(v, bytes) else v for v in values]
        row[name] = values[0] if values else None
    return row


def write_kserve(
    path: Path,
    requests: Sequence[tuple[bytes, str]],
    form: str = "b64",
    batch: int = 1,
    responses: bool = True,
) -> Path:
    """JSON lines of CloudEvents, a request and its response per ``batch`` examples.

    ``form``: ``b64`` (``{"instances": [{"b64": ...}]}``), ``examples`` (``{"instances":
    [{"examples": {"b64": ...}}]}``), ``rows`` (raw features) or ``v2`` (``inputs``).
    """
    lines = []
    for n, start in enumerate(range(0, len(requests), batch)):
        chunk = requests[start : start + batch]
        encoded = [base64.b64encode(s).decode() for s, _ in chunk]
        if form == "b64":
            body: dict[str, object] = {"instances": [{"b64": e} for e in encoded]}
        elif form == "examples":
            body = {"instances": [{"examples": {"b64": e}} for e in encoded]}
        elif form == "rows":
            body = {"instances": [as_row(s) for s, _ in chunk]}
        else:
            body = {
                "inputs": [{"name": "examples", "shape": [len(chunk)], "datatype": "BYTES", "data": encoded}]
            }
        event_id = f"req-{n:05d}"
        time = datetime.fromtimestamp(START + 60 * n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        common = {"specversion": "1.0", "id": event_id, "source": "http://penguins.kubetfx/", "time": time}
        common["datacontenttype"] = "application/json"
        lines.append({**common, "type": "org.kubeflow.serving.inference.request", "data": body})
        if responses:
            if form == "v2":
                answer: dict[str, object] = {
                    "outputs": [
                        {
                            "name": "classes",
                            "shape": [len(chunk)],
                            "datatype": "BYTES",
                            "data": [c for _, c in chunk],
                        }
                    ]
                }
            else:
                answer = {"predictions": [{"classes": c, "class_ids": 0} for _, c in chunk]}
            lines.append({**common, "type": "org.kubeflow.serving.inference.response", "data": answer})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_tfserving(path: Path, requests: Sequence[tuple[bytes, str]], batch: int = 1) -> Path:
    """A TFRecord file of PredictionLog protos (predict_log of the ``examples`` input)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for n, start in enumerate(range(0, len(requests), batch)):
            chunk = requests[start : start + batch]
            log = prediction_log_pb2.PredictionLog()
            log.log_metadata.model_spec.name = "penguins"
            log.log_metadata.timestamp_secs = START + 60 * n
            request = log.predict_log.request
            request.model_spec.name = "penguins"
            request.inputs["examples"].CopyFrom(tf.make_tensor_proto([s for s, _ in chunk], dtype=tf.string))
            response = log.predict_log.response
            response.outputs["classes"].CopyFrom(tf.make_tensor_proto([c for _, c in chunk], dtype=tf.string))
            writer.write(log.SerializeToString())
    return path
