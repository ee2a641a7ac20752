"""The Schema artifact (``schema.pbtxt``, a text Schema proto: TFX's layout), and schema
files wherever they live (a curated one: a local path, ``pkg://`` or an object store)."""

from __future__ import annotations

import os
from typing import Any

from kubetfx.artifacts.layout import SCHEMA_FILE
from kubetfx.errors import InputDataError


def path(schema_dir: str) -> str:
    """The schema file of a Schema artifact."""
    return os.path.join(schema_dir, SCHEMA_FILE)


def load_schema_file(path_or_uri: str) -> Any:
    """Read a text schema, with parse errors naming file, line and column."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx.artifacts.location import read_text

    text = read_text(path_or_uri, f"{path_or_uri}: schema file not found; check schema_file")
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as err:
        raise InputDataError(f"{path_or_uri}:{err}") from None  # ParseError reads "LINE:COL : ..."


def load(schema_dir: str) -> Any:
    """Read a Schema artifact back."""
    return load_schema_file(path(schema_dir))


def write(schema_dir: str, schema: Any) -> None:
    """Write a Schema artifact."""
    import tensorflow_data_validation as tfdv

    os.makedirs(schema_dir, exist_ok=True)
    tfdv.write_schema_text(schema, path(schema_dir))
