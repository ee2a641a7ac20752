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
_FRAMES_PER_WRITE = 4 * 8192  # four parts a record


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class TFRecordGzWriter:
    """Records appended to a gzip TFRecord file as they come (:meth:`write`), closed by
    :meth:`close` or as a context manager; the bytes equal :func:`write_tfrecord_gz`'s."""

    def __init__(self, path: str, compresslevel: int = 1) -> None:
        self._raw = open(path, "wb")  # noqa: SIM115 - closed by close()
        # mtime=0 and no file name in the gzip header: the same records give the same bytes.
        self._file = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0
        )

    def write(self, records: Iterable[bytes]) -> None:
        parts: list[bytes] = []
        for record in records:
            length = _LENGTH.pack(len(record))
            parts += (length, _CRC.pack(_masked_crc(length)), record, _CRC.pack(_masked_crc(record)))
            if len(parts) >= _FRAMES_PER_WRITE:
                # One write of many framed records: gzip's per-call cost is paid once.
                self._file.write(b"".join(parts))
                parts = []
        if parts:
            self._file.write(b"".join(parts))

    def close(self) -> None:
        self._file.close()
        self._raw.close()

    def __enter__(self) -> TFRecordGzWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_tfrecord_gz(path: str, records: Iterable[bytes], compresslevel: int = 1) -> None:
    """Write records in TFRecord framing, gzip-compressed."""
    with TFRecordGzWriter(path, compresslevel) as writer:
        writer.write(records)


def read_tfrecord_gz(path: str, verify: bool = True) -> Iterator[bytes]:
    """Yield the records of a gzip TFRecord file, reading it as they are taken (memory: one
    record); a corrupt file fails naming the record."""
    with gzip.open(path, "rb") as f:
        index = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise InputDataError(f"{path}: truncated TFRecord header at record {index}")
            (length,) = _LENGTH.unpack_from(header)
            if verify and _CRC.unpack_from(header, 8)[0] != _masked_crc(header[:8]):
                raise InputDataError(f"{path}: corrupt TFRecord length at record {index}")
            body = f.read(length + 4)
            if len(body) < length + 4:
                raise InputDataError(f"{path}: truncated TFRecord data at record {index}")
            record = body[:length]
            if verify and _CRC.unpack_from(body, length)[0] != _masked_crc(record):
                raise InputDataError(f"{path}: corrupt TFRecord data at record {index}")
            yield record
            index += 1
