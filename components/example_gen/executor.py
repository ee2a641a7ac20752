"""ExampleGen: CSV or Parquet -> gzip TFRecord of tf.Example, split by a deterministic hash.

Plain Python, no KFP: ``run()`` takes paths and parameters and returns an
:class:`ExampleGenResult`. It imports no TensorFlow: rows are encoded with tfx-bsl's
C++ encoder and framed as TFRecords here (length, masked CRC32C, data, masked CRC32C),
which TensorFlow reads back as usual.

The input is read and written batch by batch (:class:`kubetfx.artifacts.tabular.TableScan`:
about ``$KUBETFX_BATCH_MB`` of input at a time, 32 MB unless set), so memory stays the same
whatever the row count: a first pass over the files settles every column's type (a CSV
column is typed by all its values, as when a whole file is read), a second splits each
batch and appends it to every split's files. A row's split depends only on the row, so the
splits equal those of reading the whole table at once (a test compares).

Reading the input is :mod:`kubetfx.artifacts.tabular`; the layout written under
``output_dir`` (``Split-<name>/`` with the TFRecords, a columnar copy and where each row
came from, which the Trainer uses to name the CSV lines of rows it cannot train on) is
:mod:`kubetfx.artifacts.examples`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from dataclasses import dataclass, field
from typing import Any

from kubetfx.artifacts import examples
from kubetfx.artifacts.kinds import EXAMPLES, TYPE_KEY
from kubetfx.artifacts.tabular import TableScan, detect_format, resolve_input, to_record_batch
from kubetfx.errors import InputDataError
from kubetfx.faults import failpoint
from kubetfx.fingerprint import fingerprint_files


@dataclass
class ExampleGenResult:
    """What ExampleGen wrote; :meth:`metadata` becomes the Examples artifact's metadata."""

    input_uri: str
    files: list[str]
    file_format: str
    span: int
    version: int
    fingerprint: str
    columns: list[str]
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def split_names(self) -> list[str]:
        return list(self.row_counts)

    def metadata(self) -> dict[str, Any]:
        """Artifact metadata, TFX-compatible where TFX has a name for it."""
        meta: dict[str, Any] = {
            TYPE_KEY: EXAMPLES,
            "split_names": json.dumps(self.split_names),  # TFX's own encoding
            "span": self.span,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "input_uri": self.input_uri,
            "input_files": [os.path.basename(f) for f in self.files],
            "input_format": self.file_format,
            "payload_format": "FORMAT_TF_EXAMPLE",
            **examples.layout_metadata(),
            "row_counts": dict(self.row_counts),
            "columns": list(self.columns),
        }
        for split, count in self.row_counts.items():
            meta[f"row_count_{split}"] = count
        return meta


# ---------------------------------------------------------------------- splits


def parse_splits(text: str) -> list[tuple[str, int]]:
    """``"train:2,eval:1"`` -> [("train", 2), ("eval", 1)], checked."""
    splits = []
    for part in text.split(","):
        name, sep, buckets = part.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not buckets.strip().isdigit():
            raise InputDataError(
                f"splits {text!r}: {part.strip()!r} is not NAME:BUCKETS (e.g. train:2,eval:1)"
            )
        if int(buckets) <= 0:
            raise InputDataError(f"splits {text!r}: split {name!r} needs at least one bucket")
        splits.append((name, int(buckets)))
    names = [n for n, _ in splits]
    if len(set(names)) != len(names) or len(splits) < 1:
        raise InputDataError(f"splits {text!r}: split names must be unique")
    return splits


def _bucket_keys(table: Any, partition_feature: str) -> list[bytes]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if partition_feature:
        if partition_feature not in table.column_names:
            raise InputDataError(
                f"partition_feature {partition_feature!r} is not a column; columns: {table.column_names}"
            )
        columns = [table.column(partition_feature)]
    else:
        columns = [table.column(n) for n in table.column_names]
    as_text = [pc.fill_null(c.cast(pa.string()), "") for c in columns]
    joined = pc.binary_join_element_wise(*as_text, "\x1f") if len(as_text) > 1 else as_text[0]
    return [s.encode() for s in joined.to_pylist()]


def assign_splits(table: Any, splits: list[tuple[str, int]], partition_feature: str) -> Any:
    """Split index per row: CRC32 of the row (or of the partition feature) into buckets."""
    import numpy as np

    total = sum(b for _, b in splits)
    keys = _bucket_keys(table, partition_feature)
    buckets = np.fromiter((zlib.crc32(k) % total for k in keys), dtype=np.int64, count=len(keys))
    edges = np.cumsum([b for _, b in splits])
    return np.searchsorted(edges, buckets, side="right")


# ---------------------------------------------------------------------- entry


def run(
    input_uri: str,
    output_dir: str,
    *,
    input_format: str = "auto",
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
    version: int = 0,
    batch_mb: float | None = None,
) -> ExampleGenResult:
    """Read the input, split it and write Examples under ``output_dir``, batch by batch.

    ``batch_mb``: input read at a time (None: ``$KUBETFX_BATCH_MB``, else 32 MB).
    """
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    split_spec = parse_splits(splits)
    files, span = resolve_input(input_uri)
    file_format = detect_format(files, input_format)
    scan = TableScan(files, file_format, batch_mb)
    if partition_feature and partition_feature not in scan.column_names:
        raise InputDataError(
            f"partition_feature {partition_feature!r} is not a column; columns: {scan.column_names}"
        )
    encoder = example_coder.RecordBatchToExamplesEncoder()
    writers: list[examples.SplitWriter] = []
    try:
        for table, sources in scan.batches():
            if not writers:
                writers = [
                    examples.SplitWriter(output_dir, name, scan.schema, sources.schema)
                    for name, _ in split_spec
                ]
            index = assign_splits(table, split_spec, partition_feature)
            batch = to_record_batch(table)
            for i, writer in enumerate(writers):
                chosen = index == i
                if chosen.any():
                    mask = pa.array(chosen)
                    # The same rows columnar beside the TFRecords (see kubetfx.artifacts.examples).
                    writer.write(encoder.encode(batch.filter(mask)), table.filter(mask), sources.filter(mask))
        counts = {name: writer.rows for (name, _), writer in zip(split_spec, writers, strict=True)}
        empty = [name for name, count in counts.items() if count == 0]
        if empty:
            by = f", partition_feature {partition_feature!r}" if partition_feature else ""
            raise InputDataError(
                f"{input_uri}: split {empty[0]!r} got no rows out of {scan.num_rows} "
                f"(splits {splits!r}{by}); use more rows or other split buckets"
            )
        for writer in writers:
            writer.close()
            failpoint("example_gen.write")  # a test hook (kubetfx.faults): a split written, not all
    except InputDataError:
        # Nothing half-written is left behind: a refused input leaves no split folders.
        for writer in writers:
            writer.close()
            shutil.rmtree(writer.folder, ignore_errors=True)
        raise
    return ExampleGenResult(
        input_uri=input_uri,
        files=files,
        file_format=file_format,
        span=span,
        version=version,
        fingerprint=fingerprint_files(files),
        columns=scan.column_names,
        row_counts=counts,
    )
