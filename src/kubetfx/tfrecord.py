"""TFRecord files without TensorFlow: framing (length, masked CRC32C, data, masked CRC32C),
gzip-compressed as TensorFlow's ``GZIP`` TFRecord option writes them. Where the Examples
artifact keeps them is :mod:`kubetfx.artifacts.examples`."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Iterator

from kubetfx.errors import InputDataError

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord_gz(path: str, records: Iterable[bytes], compresslevel: int = 1) -> None:
    """Write records in TFRecord framing, gzip-compressed."""
    # mtime=0 and no file name in the gzip header: the same records give the same bytes.
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0) as f,
    ):
        for record in records:
            length = _LENGTH.pack(len(record))
            f.write(length)
            f.write(_CRC.pack(_masked_crc(length)))
            f.write(record)
            f.write(_CRC.pack(_masked_crc(record)))


def read_tfrecord_gz(path: str, verify: bool = True) -> Iterator[bytes]:
    """Yield the records of a gzip TFRecord file; a corrupt file fails naming the record."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    offset, index, end = 0, 0, len(data)
    while offset < end:
        if offset + 12 > end:
            raise InputDataError(f"{path}: truncated TFRecord header at record {index}")
        header = data[offset : offset + 8]
        (length,) = _LENGTH.unpack(header)
        if verify and _CRC.unpack_from(data, offset + 8)[0] != _masked_crc(header):
            raise InputDataError(f"{path}: corrupt TFRecord length at record {index}")
        start = offset + 12
        stop = start + length
        if stop + 4 > end:
            raise InputDataError(f"{path}: truncated TFRecord data at record {index}")
        record = data[start:stop]
        if verify and _CRC.unpack_from(data, stop)[0] != _masked_crc(record):
            raise InputDataError(f"{path}: corrupt TFRecord data at record {index}")
        yield record
        offset, index = stop + 4, index + 1
