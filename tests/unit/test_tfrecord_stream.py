"""TFRecord files are written and read as records come: reading the first records of a
file never reads the rest (a corrupt tail is not reached), and a damaged file still fails
naming the record."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kubetfx.errors import InputDataError
from kubetfx.tfrecord import TFRecordGzWriter, read_tfrecord_gz, write_tfrecord_gz


def test_written_in_batches_read_back_the_same(tmp_path: Path) -> None:
    records = [bytes([i % 256]) * (i % 300) for i in range(50_000)]
    with TFRecordGzWriter(str(tmp_path / "batches.gz")) as writer:
        for start in range(0, len(records), 7_000):
            writer.write(records[start : start + 7_000])
    write_tfrecord_gz(str(tmp_path / "once.gz"), records)
    assert list(read_tfrecord_gz(str(tmp_path / "batches.gz"))) == records
    assert (tmp_path / "batches.gz").read_bytes() == (tmp_path / "once.gz").read_bytes()


def test_the_first_records_are_read_without_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "tail.gz"
    write_tfrecord_gz(str(path), [b"record-%d" % i for i in range(1000)])
    good = gzip.decompress(path.read_bytes())
    data = bytearray(good)
    data[-3] ^= 0xFF  # the last record's checksum
    path.write_bytes(gzip.compress(bytes(data)))
    reader = read_tfrecord_gz(str(path))
    assert [next(reader) for _ in range(3)] == [b"record-0", b"record-1", b"record-2"]
    with pytest.raises(InputDataError, match=r"tail.gz: corrupt TFRecord data at record 999"):
        list(read_tfrecord_gz(str(path)))
    path.write_bytes(gzip.compress(bytes(data[:-10])))
    with pytest.raises(InputDataError, match=r"truncated TFRecord data at record 999"):
        list(read_tfrecord_gz(str(path)))
    path.write_bytes(gzip.compress(good + b"\x01\x02"))
    with pytest.raises(InputDataError, match=r"truncated TFRecord header at record 1000"):
        list(read_tfrecord_gz(str(path)))
