"""The Examples artifact: its splits, their files, and reading and writing them.

Layout (names in :mod:`kubetfx.artifacts.layout`)::

    Split-<name>/data_tfrecord-00000-of-00001.gz   (the contract: gzip TFRecord of tf.Example)
    Split-<name>/data.parquet                      (the same rows, columnar, for fast reading)
    Split-<name>/source_rows.parquet               (where each row came from: file, row, line)

TFX tools read only the TFRecords. kubetfx's readers take the columnar copy when it is
there (decoding tf.Examples costs ~16 us a row, reading the copy ~0.7 us) and the
TFRecords otherwise, so Examples written by another tool read the same.

``source_rows.parquet`` lines up row for row with the split's examples and holds, for each,
the input file's name, the row's index among that file's data rows (0-based, as pandas and
pyarrow count) and, for CSV, the line of the file the row starts on (the header is line 1).
It is kept out of the examples themselves, so it is never a feature.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from typing import Any

from kubetfx.artifacts.layout import (
    COLUMNAR_FILE,
    EXAMPLES_FILE,
    EXAMPLES_PATTERN,
    SOURCE_ROWS_FILE,
    SPLIT_PREFIX,
    split_dir,
    split_of,
    train_first,
)
from kubetfx.errors import InputDataError
from kubetfx.tfrecord import TFRecordGzWriter, read_tfrecord_gz, write_tfrecord_gz


def split_pattern(examples_dir: str, split: str) -> str:
    """The file pattern of one split's TFRecords."""
    return os.path.join(split_dir(examples_dir, split), EXAMPLES_PATTERN)


def split_names(examples_dir: str) -> list[str]:
    """The splits an Examples artifact holds, from its folders (train first, then by name)."""
    names = [split_of(os.path.basename(p)) for p in glob.glob(os.path.join(examples_dir, f"{SPLIT_PREFIX}*"))]
    if not names:
        raise InputDataError(
            f"{examples_dir}: no {SPLIT_PREFIX}<name> folders; is this an Examples artifact?"
        )
    return train_first(names)


def split_files(examples_dir: str, split: str) -> list[str]:
    """The TFRecord files of one split (an error if there are none)."""
    files = sorted(glob.glob(split_pattern(examples_dir, split)))
    if not files:
        raise InputDataError(f"{examples_dir}: split {split!r} has no {EXAMPLES_PATTERN} files")
    return files


def records(examples_dir: str, split: str) -> list[bytes]:
    """Every serialized tf.Example of a split."""
    return [r for f in split_files(examples_dir, split) for r in read_tfrecord_gz(f)]


def iter_records(examples_dir: str, split: str) -> Iterator[bytes]:
    """Every serialized tf.Example of a split, read as they are taken (memory: one record)."""
    for path in split_files(examples_dir, split):
        yield from read_tfrecord_gz(path)


def first_records(examples_dir: str, split: str, n: int) -> list[bytes]:
    """The first ``n`` serialized records of a split (fewer if it has fewer; an error if
    it has no files)."""
    sample: list[bytes] = []
    for path in split_files(examples_dir, split):
        for record in read_tfrecord_gz(path):
            sample.append(record)
            if len(sample) >= n:
                return sample
    return sample


def columnar_path(examples_dir: str, split: str) -> str | None:
    """The split's columnar copy, or None when the Examples have none (another tool wrote them)."""
    path = os.path.join(split_dir(examples_dir, split), COLUMNAR_FILE)
    return path if os.path.exists(path) else None


def read_split(examples_dir: str, split: str) -> Any:
    """One split as a pyarrow Table: the columnar copy, else the decoded TFRecords."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columnar = columnar_path(examples_dir, split)
    if columnar is not None:
        return pq.read_table(columnar)
    from tfx_bsl.coders import example_coder

    found = records(examples_dir, split)
    if not found:
        raise InputDataError(f"{examples_dir}: split {split!r} has no examples")
    return pa.Table.from_batches([example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(found)])


def read_source_rows(examples_dir: str, split: str) -> Any | None:
    """The split's ``source_rows.parquet`` as a pyarrow Table, or None when there is none."""
    import pyarrow.parquet as pq

    path = os.path.join(split_dir(examples_dir, split), SOURCE_ROWS_FILE)
    return pq.read_table(path) if os.path.exists(path) else None


def write_split(examples_dir: str, split: str, encoded: Iterable[bytes], table: Any, sources: Any) -> None:
    """Write one split: its serialized tf.Examples, the same rows columnar, and their sources."""
    import pyarrow.parquet as pq

    folder = split_dir(examples_dir, split)
    os.makedirs(folder, exist_ok=True)
    write_tfrecord_gz(os.path.join(folder, EXAMPLES_FILE), encoded)
    pq.write_table(table, os.path.join(folder, COLUMNAR_FILE))
    pq.write_table(sources, os.path.join(folder, SOURCE_ROWS_FILE))


class SplitWriter:
    """One split written batch by batch (:meth:`write`), as :func:`write_split` writes it
    whole: the TFRecords, the columnar copy in ``schema`` and the sources in
    ``sources_schema``. Memory: the batch being written."""

    def __init__(self, examples_dir: str, split: str, schema: Any, sources_schema: Any) -> None:
        import pyarrow.parquet as pq

        self.folder = split_dir(examples_dir, split)
        os.makedirs(self.folder, exist_ok=True)
        self.rows = 0
        self._records = TFRecordGzWriter(os.path.join(self.folder, EXAMPLES_FILE))
        self._columnar = pq.ParquetWriter(os.path.join(self.folder, COLUMNAR_FILE), schema)
        self._sources = pq.ParquetWriter(os.path.join(self.folder, SOURCE_ROWS_FILE), sources_schema)

    def write(self, encoded: Iterable[bytes], table: Any, sources: Any) -> None:
        """Append rows: their serialized tf.Examples, the rows and their sources."""
        self._records.write(encoded)
        self._columnar.write_table(table)
        self._sources.write_table(sources)
        self.rows += table.num_rows

    def close(self) -> None:
        self._records.close()
        self._columnar.close()
        self._sources.close()


def layout_metadata() -> dict[str, str]:
    """How the layout is described in an Examples artifact's metadata."""
    return {
        "layout": f"{SPLIT_PREFIX}<split>/data_tfrecord-*.gz",
        "columnar_copy": f"{SPLIT_PREFIX}<split>/{COLUMNAR_FILE}",
        "source_rows": f"{SPLIT_PREFIX}<split>/{SOURCE_ROWS_FILE}",
    }
