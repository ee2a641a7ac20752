"""SchemaGen: infer a schema from the train split's statistics, or import a curated one.

Layout written: ``schema.pbtxt`` (text Schema proto, TFX's layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetfx.errors import InputDataError
from kubetfx.fingerprint import local_path
from kubetfx.types import SCHEMA, TYPE_KEY

SCHEMA_FILE = "schema.pbtxt"
TRAINING, SERVING = "TRAINING", "SERVING"


@dataclass
class SchemaResult:
    """Where the schema came from and what it holds."""

    source: str  # "inferred from <split>" or the imported file
    features: list[str]
    label_key: str

    def metadata(self) -> dict[str, Any]:
        """Artifact metadata."""
        return {
            TYPE_KEY: SCHEMA,
            "source": self.source,
            "features": self.features,
            "label_key": self.label_key,
        }


def load_schema_file(path_or_uri: str) -> Any:
    """Read a text schema, with parse errors naming file, line and column."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx import storage

    path = local_path(path_or_uri)
    if path is None and storage.scheme_of(path_or_uri) in storage.REMOTE_SCHEMES:
        try:  # a curated schema kept in the object store
            text = storage.read_bytes(path_or_uri).decode()
        except storage.StorageError as err:
            raise InputDataError(f"{path_or_uri}: schema file not found; check schema_file ({err})") from None
    elif path is None or not path.is_file():
        raise InputDataError(f"{path_or_uri}: schema file not found; check schema_file")
    else:
        text = path.read_text()
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as err:
        raise InputDataError(f"{path_or_uri}:{err}") from None  # ParseError reads "LINE:COL : ..."


def with_label_environments(schema: Any, label_key: str) -> Any:
    """Make ``label_key`` required in TRAINING and absent in SERVING."""
    names = [f.name for f in schema.feature]
    if label_key not in names:
        raise InputDataError(
            f"label_key {label_key!r} is not a feature of the schema; features: {', '.join(names)}"
        )
    for env in (TRAINING, SERVING):
        if env not in schema.default_environment:
            schema.default_environment.append(env)
    label = next(f for f in schema.feature if f.name == label_key)
    if SERVING not in label.not_in_environment:
        label.not_in_environment.append(SERVING)
    return schema


def run(statistics_dir: str, output_dir: str, *, schema_file: str = "", label_key: str = "") -> SchemaResult:
    """Write ``schema.pbtxt`` under ``output_dir``."""
    import tensorflow_data_validation as tfdv
    from kubetfx.components.statistics_gen import executor as stats

    if schema_file:
        schema = load_schema_file(schema_file)
        source = schema_file
    else:
        splits = stats.splits_of(statistics_dir)
        if not splits:
            raise InputDataError(f"{statistics_dir}: no statistics to infer a schema from")
        split = "train" if "train" in splits else splits[0]
        schema = tfdv.infer_schema(stats.load(statistics_dir, split))
        source = f"inferred from split {split}"
    if label_key:
        schema = with_label_environments(schema, label_key)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    tfdv.write_schema_text(schema, str(Path(output_dir, SCHEMA_FILE)))
    return SchemaResult(source=source, features=[f.name for f in schema.feature], label_key=label_key)


def load(schema_dir: str) -> Any:
    """Read a schema artifact back."""
    return load_schema_file(str(Path(schema_dir, SCHEMA_FILE)))
