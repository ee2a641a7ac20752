"""ExampleGen on Beam: the same examples as the in-process path, read and split by workers.

The input is read in pieces (one per CSV file, one per Parquet row group: see
:func:`kubetfx.beam.read_units`), each piece by a Beam worker, with the in-process
reader's checks and its rule for column types that differ between files. Every piece is
split by the in-process rule (:func:`.executor.assign_splits`: CRC32 of the row, or of
the partition feature, into the split buckets), encoded by the same tfx-bsl encoder, and
written by its worker as one TFRecord shard per split:
``Split-<name>/data_tfrecord-<piece>-of-<pieces>.gz``. Shards are numbered in input
order, so a split's records, read shard after shard, are the in-process path's records
in the same order (a test compares them, with fingerprints and row counts).

The columnar copy and the row sources (``data.parquet``, ``source_rows.parquet``) are
written per piece by the workers and joined, row group by row group, by the launching
process after the pipeline: memory stays at one row group.

Workers write to ``output_dir`` directly: with a runner on other machines it must be a
location they can reach (see docs/beam.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

from kubetfx.components.example_gen.executor import ExampleGenResult, assign_splits, parse_splits

from kubetfx.artifacts.layout import COLUMNAR_FILE, SOURCE_ROWS_FILE, split_dir
from kubetfx.artifacts.tabular import detect_format, resolve_input
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import fingerprint_files

PARTS_DIR = ".beam-parts"  # per-piece columnar files, removed once joined


def shard_name(ordinal: int, pieces: int) -> str:
    """A split's TFRecord shard written from one piece (matches ``EXAMPLES_PATTERN``)."""
    return f"data_tfrecord-{ordinal:05d}-of-{pieces:05d}.gz"


def write_piece(
    piece: tuple[int, Any, Any],
    output_dir: str,
    split_spec: list[tuple[str, int]],
    partition_feature: str,
    pieces: int,
) -> list[tuple[str, int]]:
    """Split one piece, encode it and write its shards; ``[(split, rows), ...]``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tfx_bsl.coders import example_coder

    from kubetfx.artifacts.tabular import to_record_batch
    from kubetfx.tfrecord import write_tfrecord_gz

    ordinal, table, sources = piece
    index = assign_splits(table, split_spec, partition_feature)
    batch = to_record_batch(table)
    encoder = example_coder.RecordBatchToExamplesEncoder()
    counts = []
    for i, (name, _) in enumerate(split_spec):
        mask = pa.array(index == i)
        folder = split_dir(output_dir, name)
        parts = os.path.join(output_dir, PARTS_DIR, name)
        os.makedirs(folder, exist_ok=True)
        os.makedirs(parts, exist_ok=True)
        selected = batch.filter(mask)
        write_tfrecord_gz(
            os.path.join(folder, shard_name(ordinal, pieces)),
            encoder.encode(selected) if selected.num_rows else [],
        )
        pq.write_table(table.filter(mask), os.path.join(parts, f"{ordinal:05d}-data.parquet"))
        pq.write_table(sources.filter(mask), os.path.join(parts, f"{ordinal:05d}-sources.parquet"))
        counts.append((name, int(selected.num_rows)))
    return counts


def _join(parts: list[str], target: str) -> int:
    """Concatenate parquet files of one schema into ``target``, a row group at a time."""
    import pyarrow.parquet as pq

    rows = 0
    writer = None
    try:
        for path in parts:
            part = pq.ParquetFile(path)
            if writer is None:
                writer = pq.ParquetWriter(target, part.schema_arrow)
            for group in range(part.num_row_groups):
                table = part.read_row_group(group)
                writer.write_table(table)
                rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def run(
    input_uri: str,
    output_dir: str,
    *,
    input_format: str = "auto",
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
    version: int = 0,
    beam_pipeline_args: Sequence[str] | str = (),
) -> ExampleGenResult:
    """Read the input, split it and write Examples under ``output_dir``, on Beam."""
    import apache_beam as beam
    import pyarrow.parquet as pq

    from kubetfx.beam import input_error, pipeline_options, read_tabular, read_units

    options = pipeline_options(beam_pipeline_args)
    split_spec = parse_splits(splits)
    files, span = resolve_input(input_uri)
    file_format = detect_format(files, input_format)
    pieces = len(read_units(files, file_format))
    for name, _ in split_spec:
        shutil.rmtree(split_dir(output_dir, name), ignore_errors=True)
    parts_root = os.path.join(output_dir, PARTS_DIR)
    shutil.rmtree(parts_root, ignore_errors=True)
    try:
        try:
            with beam.Pipeline(options=options) as pipeline:
                read, _ = read_tabular(pipeline, files, file_format)
                _ = read | "Write" >> beam.Map(write_piece, output_dir, split_spec, partition_feature, pieces)
        except Exception as err:  # a worker's error comes back as the runner's
            raised = input_error(err)
            if raised is err:
                raise
            raise raised from None
        counts: dict[str, int] = {}
        columns: list[str] = []
        for name, _ in split_spec:
            parts = os.path.join(parts_root, name)
            data = sorted(os.path.join(parts, f) for f in os.listdir(parts) if f.endswith("-data.parquet"))
            sources = [p.replace("-data.parquet", "-sources.parquet") for p in data]
            if len(data) != pieces:
                raise RuntimeError(f"{output_dir}: split {name!r} has {len(data)} of {pieces} pieces written")
            columns = columns or pq.read_schema(data[0]).names
            counts[name] = _join(data, os.path.join(split_dir(output_dir, name), COLUMNAR_FILE))
            _join(sources, os.path.join(split_dir(output_dir, name), SOURCE_ROWS_FILE))
        empty = [name for name, count in counts.items() if count == 0]
        if empty:
            by = f", partition_feature {partition_feature!r}" if partition_feature else ""
            raise InputDataError(
                f"{input_uri}: split {empty[0]!r} got no rows out of {sum(counts.values())} "
                f"(splits {splits!r}{by}); use more rows or other split buckets"
            )
    except BaseException:
        for name, _ in split_spec:  # nothing half-written stays behind
            shutil.rmtree(split_dir(output_dir, name), ignore_errors=True)
        raise
    finally:
        shutil.rmtree(parts_root, ignore_errors=True)
    return ExampleGenResult(
        input_uri=input_uri,
        files=files,
        file_format=file_format,
        span=span,
        version=version,
        fingerprint=fingerprint_files(files),
        columns=columns,
        row_counts=counts,
    )
