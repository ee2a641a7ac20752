"""Serving request logs as rows of features and predicted classes.

Two formats, both as their loggers document them:

* ``kserve``: KServe's payload logger sends each request and each response as a
  CloudEvent (types ``org.kubeflow.serving.inference.request`` and
  ``org.kubeflow.serving.inference.response``; a request and its response share the
  event ``id``). The logger posts them in binary mode to a sink; what is read here is what
  a sink that stores them as **JSON lines of structured-mode CloudEvents** writes (one
  event a line: ``specversion``, ``id``, ``type``, ``source``, ``time``, and the body in
  ``data``, or base64 in ``data_base64``). That is a stand-in for a given sink: a sink
  that keeps the binary-mode headers maps them one to one (``ce-id`` -> ``id``, ...).
  Bodies: the KServe v1 / TF Serving REST protocol (``{"instances": [...]}`` with each
  instance a serialized tf.Example as ``{"b64": ...}`` or ``{"examples": {"b64": ...}}``,
  or a row of raw features) and the v2 protocol (``{"inputs": [{"name", "shape",
  "datatype", "data"}]}``); responses ``{"predictions": [...]}`` (rows or columns) and v2
  ``{"outputs": [...]}``.
* ``tfserving``: TF Serving's request logging writes TFRecord files of
  ``tensorflow.serving.PredictionLog`` (``predict_log`` with the ``examples`` string input,
  or raw feature inputs; ``classify_log`` with an example list), each with
  ``log_metadata.timestamp_secs``. Plain or gzip-compressed.

A row maps a feature to its values (a list, as in tf.Example); a missing feature is simply
not in the row. A predicted class is the response's ``classes`` (else ``class_ids`` named
through ``class_names``), "" when the response is absent or says neither.
"""

from __future__ import annotations

import base64
import glob
import gzip
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubetfx.errors import InputDataError
from kubetfx.storage import is_remote, localize_pattern

REQUEST_EVENT = "org.kubeflow.serving.inference.request"
RESPONSE_EVENT = "org.kubeflow.serving.inference.response"
FORMATS = ("auto", "kserve", "tfserving")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
EXAMPLES_INPUT = "examples"

Row = dict[str, list[Any]]


@dataclass
class Request:
    """One logged request: its instances as rows and, when logged, each one's prediction."""

    id: str
    time: float | None  # Unix seconds; None when the log does not say
    rows: list[Row] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)  # one per row when the response was logged


def log_files(uri: str) -> list[str]:
    """Local files a file, folder or glob (local or object store) names, sorted."""
    path = localize_pattern(uri) if is_remote(uri) else uri
    if any(c in path for c in "*?["):
        found = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(path):
        found = [os.path.join(root, n) for root, _, names in os.walk(path) for n in names]
    elif os.path.isfile(path):
        found = [path]
    else:
        raise InputDataError(f"{uri}: no such file, folder or pattern of serving logs")
    found = sorted(p for p in found if not os.path.basename(p).startswith("."))
    if not found:
        raise InputDataError(f"{uri}: no serving log files there")
    return found


def detect_format(path: str) -> str:
    """``kserve`` for JSON (by the name, else a first line that is a JSON object), else
    ``tfserving``: a TFRecord's first bytes are a length, which may well be ``{``."""
    if path.endswith(JSON_SUFFIXES):
        return "kserve"
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    try:
        return "kserve" if isinstance(json.loads(first), dict) else "tfserving"
    except ValueError:  # UnicodeDecodeError included
        return "tfserving"


def read_requests(uri: str, log_format: str = "auto", class_names: Sequence[str] = ()) -> list[Request]:
    """Every logged request under ``uri``, oldest first (by time where logged, else in the
    order the files and records hold them)."""
    if log_format not in FORMATS:
        raise InputDataError(f"log_format {log_format!r}: use one of {', '.join(FORMATS)}")
    requests: list[Request] = []
    for path in log_files(uri):
        kind = detect_format(path) if log_format == "auto" else log_format
        reader = read_kserve if kind == "kserve" else read_tfserving
        requests.extend(reader(path, class_names))
    order = {id(r): i for i, r in enumerate(requests)}
    if all(r.time is not None for r in requests):
        requests.sort(key=lambda r: (r.time, order[id(r)]))
    return requests


# ---------------------------------------------------------------------- KServe CloudEvents


def _event_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _event_data(event: dict[str, Any]) -> Any:
    if "data_base64" in event:
        raw = base64.b64decode(event["data_base64"])
        return json.loads(raw) if raw.strip() else {}
    data = event.get("data")
    return json.loads(data) if isinstance(data, str) and data.strip()[:1] in ("{", "[") else data


def read_kserve(path: str, class_names: Sequence[str] = ()) -> list[Request]:
    """Requests from JSON lines of structured-mode CloudEvents (see the module docstring)."""
    requests: dict[str, Request] = {}
    responses: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as err:
                raise InputDataError(f"{path}:{number}: not a JSON CloudEvent ({err})") from None
            kind = str(event.get("type", ""))
            event_id = str(event.get("id", number))
            if kind == REQUEST_EVENT:
                rows = request_rows(_event_data(event), f"{path}:{number}")
                requests[event_id] = Request(event_id, _event_time(event.get("time")), rows)
            elif kind == RESPONSE_EVENT:
                responses[event_id] = _event_data(event)
    for event_id, request in requests.items():
        if event_id in responses:
            request.predictions = response_classes(responses[event_id], len(request.rows), class_names)
    return list(requests.values())


def _b64(value: Any) -> bytes | None:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return None


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _instance_row(instance: Any, where: str) -> Row:
    example = _b64(instance)
    if example is None and isinstance(instance, dict) and EXAMPLES_INPUT in instance:
        example = _b64(instance[EXAMPLES_INPUT])
    if example is not None:
        return example_row(example)
    if isinstance(instance, dict):
        # A null is a feature present without values, as ExampleGen writes a missing cell.
        return {str(k): [x for x in _listed(v) if x is not None] for k, v in instance.items()}
    raise InputDataError(f"{where}: an instance is neither a row of features nor a b64 tf.Example")


def _v2_columns(inputs: list[dict[str, Any]], where: str) -> list[Row]:
    """v2 ``inputs``: one tensor per feature (or ``examples`` of b64/bytes), batch first."""
    rows: list[Row] = []
    for tensor in inputs:
        name = str(tensor.get("name", ""))
        data = tensor.get("data") or []
        shape = tensor.get("shape") or [len(data)]
        batch = int(shape[0]) if shape else len(data)
        width = len(data) // batch if batch else 0
        while len(rows) < batch:
            rows.append({})
        for i in range(batch):
            values = data[i * width : (i + 1) * width]
            if name == EXAMPLES_INPUT:
                for value in values:
                    raw = _b64(value) or (base64.b64decode(value) if isinstance(value, str) else b"")
                    rows[i].update(example_row(raw))
            else:
                rows[i][name] = [v for v in values if v is not None]
    if not rows and inputs:
        raise InputDataError(f"{where}: v2 inputs without data")
    return rows


def request_rows(body: Any, where: str = "request") -> list[Row]:
    """Rows of one request body (v1 ``instances``/``inputs`` or v2 ``inputs``)."""
    if not isinstance(body, dict):
        raise InputDataError(f"{where}: a request body must be a JSON object")
    if "instances" in body:
        return [_instance_row(i, where) for i in body["instances"]]
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) and "datatype" in inputs[0]:
        return _v2_columns(inputs, where)
    if isinstance(inputs, dict):  # TF Serving's columnar form: {"inputs": {"feature": [values]}}
        columns = {k: _listed(v) for k, v in inputs.items()}
        size = max((len(v) for v in columns.values()), default=0)
        if set(columns) == {EXAMPLES_INPUT}:
            return [example_row(_b64(v) or b"") for v in columns[EXAMPLES_INPUT]]
        return [
            {k: [v[i]] for k, v in columns.items() if i < len(v) and v[i] is not None} for i in range(size)
        ]
    if isinstance(inputs, list):
        return [_instance_row(i, where) for i in inputs]
    raise InputDataError(f"{where}: no 'instances' or 'inputs' in the request body")


def _name(value: Any, class_names: Sequence[str]) -> str:
    value = value[0] if isinstance(value, list) and value else value
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"]).decode("utf-8", "replace")
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float) and class_names and 0 <= int(value) < len(class_names):
        return class_names[int(value)]
    return str(value)


def response_classes(body: Any, size: int, class_names: Sequence[str] = ()) -> list[str]:
    """The predicted class of each instance in a response body ("" where it says none)."""
    columns: dict[str, list[Any]] = {}
    if isinstance(body, dict) and isinstance(body.get("predictions"), list):
        predictions = body["predictions"]
        if predictions and isinstance(predictions[0], dict):
            for key in ("classes", "class_ids"):
                columns[key] = [p.get(key) for p in predictions]
        else:
            columns["classes"] = predictions
    elif isinstance(body, dict) and isinstance(body.get("outputs"), dict):
        columns = {k: _listed(v) for k, v in body["outputs"].items()}
    elif isinstance(body, dict) and isinstance(body.get("outputs"), list):
        for tensor in body["outputs"]:
            data = tensor.get("data") or []
            columns[str(tensor.get("name", ""))] = data
    for key in ("classes", "class_ids"):
        values = columns.get(key)
        if values and len(values) == size and any(v is not None for v in values):
            return [_name(v, class_names) for v in values]
    return [""] * size


# ---------------------------------------------------------------------- TF Serving PredictionLog

_LENGTH = struct.Struct("<Q")


def _records(path: str) -> Iterator[bytes]:
    """TFRecord framing (length, its CRC, data, its CRC), plain or gzip-compressed."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise InputDataError(f"{path}: truncated TFRecord (a record's length is cut off)")
            (length,) = _LENGTH.unpack(head[:8])
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                raise InputDataError(f"{path}: truncated TFRecord (a record is cut off)")
            yield data


def _tensor_values(tensor: Any) -> list[Any]:
    """A TensorProto's values as Python values, without TensorFlow's numpy bridge."""
    for name in ("string_val", "float_val", "double_val", "int64_val", "int_val", "bool_val"):
        values = list(getattr(tensor, name))
        if values:  # string_val stays bytes: the caller knows whether they are examples or text
            return values
    return []


def _batch(tensor: Any, values: list[Any]) -> int:
    dims = [d.size for d in tensor.tensor_shape.dim]
    return int(dims[0]) if dims and dims[0] > 0 else len(values)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_tfserving(path: str, class_names: Sequence[str] = ()) -> list[Request]:
    """Requests from a TFRecord file of PredictionLog protos (see the module docstring)."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for number, record in enumerate(_records(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        stamp = log.log_metadata.timestamp_secs
        request = Request(f"{os.path.basename(path)}#{number}", float(stamp) if stamp else None)
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            inputs = log.predict_log.request.inputs
            if EXAMPLES_INPUT in inputs:
                request.rows = [example_row(v) for v in _tensor_values(inputs[EXAMPLES_INPUT])]
            else:
                request.rows = _feature_tensors(inputs)
            outputs = log.predict_log.response.outputs
            for key in ("classes", "class_ids"):
                if key in outputs:
                    values = [_text(v) for v in _tensor_values(outputs[key])]
                    if len(values) == len(request.rows):
                        request.predictions = [_name(v, class_names) for v in values]
                        break
        elif kind == "classify_log":
            examples = log.classify_log.request.input.example_list.examples
            request.rows = [example_row(e.SerializeToString()) for e in examples]
            results = log.classify_log.response.result.classifications
            if len(results) == len(request.rows):
                request.predictions = [
                    max(r.classes, key=lambda c: c.score).label if r.classes else "" for r in results
                ]
        else:
            raise InputDataError(f"{path}: record {number} is a {kind}, not a predict or classify log")
        requests.append(request)
    return requests


def _feature_tensors(inputs: Any) -> list[Row]:
    rows: list[Row] = []
    for name, tensor in inputs.items():
        values = _tensor_values(tensor)
        batch = _batch(tensor, values)
        width = len(values) // batch if batch else 0
        while len(rows) < batch:
            rows.append({})
        for i in range(batch):
            rows[i][name] = [_text(v) for v in values[i * width : (i + 1) * width]]
    return rows


# ---------------------------------------------------------------------- tf.Example


def example_row(serialized: bytes) -> Row:
    """A serialized tf.Example as a row (bytes decoded as UTF-8 text)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    row: Row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            row[name] = [v.decode("utf-8", "replace") for v in feature.bytes_list.value]
        elif kind == "int64_list":
            row[name] = list(feature.int64_list.value)
        elif kind == "float_list":
            row[name] = list(feature.float_list.value)
    return row


# ---------------------------------------------------------------------- windows

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(window: str) -> tuple[str, float]:
    """``""`` (all), ``"N"`` (the newest N requests) or a duration ``"90s"``, ``"30m"``,
    ``"24h"``, ``"7d"`` (requests logged that long before the newest one): a kind and size."""
    text = window.strip().lower()
    if not text or text == "all":
        return "all", 0.0
    if text.isdigit() and int(text) > 0:
        return "count", float(int(text))
    match = _DURATION.match(text)
    if match:
        return "time", float(match.group(1)) * _SECONDS[match.group(2)]
    raise InputDataError(f"window {window!r}: use a number of requests (1000) or a duration (30m, 24h, 7d)")


def select_window(requests: list[Request], window: str) -> list[Request]:
    """The requests in ``window`` (see :func:`parse_window`), oldest first.

    A time window ends at the newest logged request, not at the clock: logs read after
    their sink stopped still give their last window.
    """
    kind, size = parse_window(window)
    if kind == "all":
        return requests
    if kind == "count":
        return requests[-int(size) :]
    timed = [r for r in requests if r.time is not None]
    if not timed:
        raise InputDataError("a time window needs logged request times; these logs have none")
    end = max(r.time for r in timed if r.time is not None)
    return [r for r in timed if r.time is not None and r.time >= end - size]
