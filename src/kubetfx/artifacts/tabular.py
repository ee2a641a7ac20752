"""Tabular source data (CSV, Parquet) into Arrow, and Arrow into the form TFX libraries read.

One reader for every component that reads a table: ExampleGen's input, the serving sample
the ExampleValidator compares with, and the data a proposed schema is checked against
(``kubetfx schema diff``). It resolves an input URI to its files (a file, a folder, a
glob pattern or a ``{SPAN}`` pattern, local or in an object store), reads them with errors
that name the file, line and column, and converts the table to TFX's Arrow form (every
column a list column) once, for the TFRecords ExampleGen writes and the statistics
StatisticsGen computes.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubetfx import storage, taskenv
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import local_path

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SPAN_PLACEHOLDER = "{SPAN}"
# Cells that mean "missing" in a CSV (pyarrow's defaults, which include the "NA" of R exports).
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "-NaN", "-nan"]


# ---------------------------------------------------------------------- inputs


def resolve_input(input_uri: str) -> tuple[list[str], int]:
    """The files an input URI names, and the span they belong to (0 without ``{SPAN}``).

    ``input_uri`` is a file, a folder (every CSV/Parquet file in it), a glob pattern,
    or a pattern with ``{SPAN}`` (the newest span, by number, is taken).
    """
    path = local_path(input_uri)
    if path is None and storage.scheme_of(input_uri) in storage.REMOTE_SCHEMES:
        # Object-store data (s3://, minio://, gs://): the files it names, copied to this
        # task's temporary folder, then matched exactly as local ones.
        path = Path(storage.localize_pattern(input_uri))
    if path is None:
        raise InputDataError(
            f"{input_uri}: only local paths, pkg:// data and s3://, minio:// or gs:// URIs are supported"
        )
    text = str(path)
    if SPAN_PLACEHOLDER in text:
        regex = re.compile(
            "^" + re.escape(text).replace(re.escape(SPAN_PLACEHOLDER), r"(\d+)").replace(r"\*", "[^/]*") + "$"
        )
        spans: dict[int, list[str]] = {}
        for candidate in glob.glob(text.replace(SPAN_PLACEHOLDER, "*")):
            match = regex.match(candidate)
            if match and os.path.isfile(candidate):
                spans.setdefault(int(match.group(1)), []).append(candidate)
        if not spans:
            raise InputDataError(
                f"{input_uri}: no file matches this span pattern ({{SPAN}} stands for digits)"
            )
        span = max(spans)
        return sorted(spans[span]), span
    if path.is_dir():
        files = sorted(
            str(p)
            for p in path.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.suffix.lower() in CSV_SUFFIXES + PARQUET_SUFFIXES
        )
        if not files:
            raise InputDataError(f"{input_uri}: folder has no .csv or .parquet files")
        return files, 0
    if any(c in text for c in "*?["):
        files = sorted(f for f in glob.glob(text) if os.path.isfile(f))
        if not files:
            raise InputDataError(f"{input_uri}: no file matches this pattern")
        return files, 0
    if not path.exists():
        raise InputDataError(f"{input_uri}: no such file or folder; check input_uri")
    return [text], 0


def detect_format(files: list[str], input_format: str) -> str:
    """``csv`` or ``parquet``, from the parameter or the file names."""
    if input_format not in ("auto", "csv", "parquet"):
        raise InputDataError(f"input_format {input_format!r}: use auto, csv or parquet")
    if input_format != "auto":
        return input_format
    kinds = {"parquet" if f.lower().endswith(PARQUET_SUFFIXES) else "csv" for f in files}
    if len(kinds) > 1:
        raise InputDataError(
            f"input mixes CSV and Parquet files ({', '.join(os.path.basename(f) for f in files)}); "
            "point input_uri at one kind or set input_format"
        )
    return kinds.pop()


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _header(path: str, text: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text)), None)
    if not first or all(not c.strip() for c in first):
        raise InputDataError(f"{path}:1: the first line must be a header naming the columns")
    names = [c.strip() for c in first]
    for index, name in enumerate(names, 1):
        if not name:
            raise InputDataError(f"{path}:1:{index}: column {index} of the header has no name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputDataError(f"{path}:1: header names column {duplicates[0]!r} twice")
    return names


def _find_ragged(path: str, text: str, width: int, line_offset: int = 0) -> InputDataError | None:
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    for row in reader:
        if row and len(row) != width:
            return InputDataError(
                f"{path}:{reader.line_num + line_offset}: row has {len(row)} fields but the header "
                f"has {width}; fix the row (a stray comma or an unquoted field?)"
            )
    return None


def _find_unclosed_quote(
    path: str, text: str, names: list[str], line_offset: int = 0
) -> InputDataError | None:
    """A quoted field that is never closed: CSV readers take the rest of the file as its value.

    ``line_offset``: lines of the file before ``text`` (for a piece of a file)."""
    if text.count('"') % 2 == 0:  # quotes come in pairs in well-formed CSV ("" inside a field too)
        return None
    reader = csv.reader(io.StringIO(text))
    start, last_start, last = 1, 1, None
    for row in reader:
        last_start, last = start, row
        start = reader.line_num + 1
    # Unclosed, the quote runs to the end of the file: the last row spans several lines.
    multi_line = [i for i, cell in enumerate(last or []) if "\n" in cell]
    if not multi_line:
        return None
    index = multi_line[0]
    column = f" (column {names[index]!r})" if index < len(names) else ""
    return InputDataError(
        f"{path}:{last_start + line_offset}: a quoted field{column} opens on this line and is never "
        "closed, so the rest of the file would be read as one value; close the quote (a quote inside a "
        'quoted field is written "")'
    )


def read_csv(path: str, expected_header: list[str] | None, header_source: str) -> Any:
    """Read one CSV file into a pyarrow Table, with errors that name file, line and column."""
    return _read_csv(path, expected_header, header_source)[0]


def record_lines(text: str, rows: int) -> Any:
    """The line each of the ``rows`` data rows of a CSV text starts on, as a numpy array
    (the header is line 1; blank lines, which CSV readers skip, start no row; a quoted
    field may span lines); None if the rows cannot be matched to lines."""
    import numpy as np

    body = text.rstrip("\r\n")
    if "\n\n" not in body and "\n\r\n" not in body:
        starts = np.arange(2, body.count("\n") + 2, dtype=np.int64)
    else:
        lines = body.split("\n")
        starts = np.array([n for n, line in enumerate(lines[1:], 2) if line.strip("\r")], dtype=np.int64)
    # A row spread over k lines (a quoted field with line breaks) has at least two non-blank
    # lines, so as many non-blank lines as rows means one row per line.
    if len(starts) == rows:
        return starts
    reader = csv.reader(io.StringIO(text))
    found, start = [], 1
    for row in reader:
        if row and start > 1:
            found.append(start)
        start = reader.line_num + 1
    return np.array(found, dtype=np.int64) if len(found) == rows else None


def _read_csv(path: str, expected_header: list[str] | None, header_source: str) -> tuple[Any, Any]:
    """The table and the line each of its rows starts on (None if they cannot be matched)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    data = Path(path).read_bytes()
    # Excel's "CSV UTF-8" starts with a byte-order mark; it is not part of the first column's name.
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        raise InputDataError(f"{path}: file is empty; expected a header line and rows")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _position(data, err.start)
        raise InputDataError(
            f"{path}:{line}:{column}: byte 0x{data[err.start]:02x} is not valid UTF-8; save the file as UTF-8"
        ) from None
    names = _header(path, text)
    if expected_header is not None and names != expected_header:
        missing = [c for c in expected_header if c not in names]
        extra = [c for c in names if c not in expected_header]
        detail = (
            (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"extra {extra}" if extra else "")
        )
        raise InputDataError(
            f"{path}:1: header differs from {header_source}: "
            f"{detail or 'same columns in another order'}; all files of one input must share a header"
        )
    unclosed = _find_unclosed_quote(path, text, names)
    if unclosed is not None:
        raise unclosed
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as err:
        raise (
            _find_ragged(path, text, len(names)) or InputDataError(f"{path}: cannot parse CSV: {err}")
        ) from None
    if table.num_rows == 0:
        raise InputDataError(f"{path}: has a header but no data rows")
    # Line numbers are only reported when they match the rows the CSV reader found.
    return table, record_lines(text, table.num_rows)


def read_parquet(path: str) -> Any:
    """Read one Parquet file into a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.getsize(path) == 0:
        raise InputDataError(f"{path}: file is empty; expected a Parquet file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None
    if table.num_rows == 0:
        raise InputDataError(f"{path}: Parquet file has no rows")
    return table


def _unify(tables: list[Any], files: list[str]) -> Any:
    """Concatenate tables whose inferred column types may differ between files."""
    import pyarrow as pa

    columns = tables[0].column_names
    for table, path in zip(tables[1:], files[1:], strict=True):
        if table.column_names != columns:
            raise InputDataError(f"{path}: columns {table.column_names} differ from {files[0]}: {columns}")
    fields = []
    for name in columns:
        types = {t.schema.field(name).type for t in tables} - {pa.null()}
        if not types:
            target = pa.string()
        elif len(types) == 1:
            target = types.pop()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            target = pa.float64()
        else:
            target = pa.string()
        fields.append(pa.field(name, target))
    schema = pa.schema(fields)
    return pa.concat_tables([t.cast(schema) for t in tables])


def read_table(input_uri: str, input_format: str = "auto") -> Any:
    """Read every file an input URI names into one table (the same checks as ExampleGen)."""
    files, _ = resolve_input(input_uri)
    file_format = detect_format(files, input_format)
    return read_files(files, file_format)[0]


def read_files(files: list[str], file_format: str) -> tuple[Any, Any]:
    """One table of every file's rows, and where each row came from (file, row, line)."""
    import numpy as np
    import pyarrow as pa

    tables, file_ids, rows, lines = [], [], [], []
    header: list[str] | None = None
    for number, path in enumerate(files):
        if file_format == "csv":
            table, starts = _read_csv(path, header, files[0])
            header = header or table.column_names
        else:
            table, starts = read_parquet(path), None
        tables.append(table)
        file_ids.append(np.full(table.num_rows, number, dtype=np.int32))
        rows.append(np.arange(table.num_rows, dtype=np.int64))
        lines.append(pa.nulls(table.num_rows, pa.int64()) if starts is None else pa.array(starts))
    sources = pa.table(
        {
            "file": pa.DictionaryArray.from_arrays(
                np.concatenate(file_ids), pa.array([os.path.basename(f) for f in files])
            ),
            "row": np.concatenate(rows),
            "line": pa.chunked_array(lines, pa.int64()),
        }
    )
    return _unify(tables, files), sources


# ---------------------------------------------------------------------- to TFX's Arrow form


def _as_list_column(column: Any) -> Any:
    """A flat column -> a list column for tf.Example (a missing value -> an empty list)."""
    import numpy as np
    import pyarrow as pa

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    t = column.type
    if pa.types.is_boolean(t):
        column = column.cast(pa.int64())
    elif pa.types.is_integer(t):
        column = column.cast(pa.int64())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        column = column.cast(pa.float32())
    elif pa.types.is_dictionary(t):
        column = column.cast(pa.string()).cast(pa.large_binary())
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        column = column.cast(pa.large_binary())
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        column = column.cast(pa.string()).cast(pa.large_binary())
    else:
        raise InputDataError(f"column {column!r} has type {t}, which tf.Example cannot hold")
    if pa.types.is_floating(column.type):
        # NaN is "missing" in CSV exports; keep it out of the data like an empty cell.
        valid_float = np.asarray(column.is_valid()) & ~np.isnan(
            column.fill_null(0).to_numpy(zero_copy_only=False)
        )
        valid = valid_float
    else:
        valid = np.asarray(column.is_valid())
    offsets = np.concatenate([[0], np.cumsum(valid)]).astype(np.int64)
    values = column.filter(pa.array(valid))
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def to_record_batch(table: Any, *, shortcuts: bool = False) -> Any:
    """A flat table -> the Arrow form TFX libraries use: every column a list column, a
    missing value (or a float NaN) an empty list.

    With ``shortcuts`` two column kinds are taken a shorter way, to the same arrays (a test
    compares): dictionary-encoded strings (not decoded value by value first) and 32/64-bit
    floats (through numpy). StatisticsGen takes them when it reads the columnar copy.
    """
    import pyarrow as pa

    names = table.column_names
    fast = {}
    for n in names if shortcuts else ():
        arrow_type = table.schema.field(n).type
        if pa.types.is_dictionary(arrow_type) and pa.types.is_string(arrow_type.value_type):
            fast[n] = _dictionary_list_column(table.column(n))
        elif pa.types.is_float32(arrow_type) or pa.types.is_float64(arrow_type):
            fast[n] = _float_list_column(table.column(n))
    return pa.RecordBatch.from_arrays(
        [fast[n] if n in fast else _as_list_column(table.column(n)) for n in names], names
    )


def _list_offsets(valid: Any) -> Any:
    """Offsets of a list column with one value where ``valid`` and none elsewhere."""
    import numpy as np
    import pyarrow as pa

    offsets = np.empty(len(valid) + 1, dtype=np.int64)
    offsets[0] = 0
    np.cumsum(valid, dtype=np.int64, out=offsets[1:])
    return pa.array(offsets)


def _dictionary_list_column(column: Any) -> Any:
    """A dictionary<string> column -> large_list<large_binary>, a missing value -> an empty
    list: what the plain conversion makes of the same column decoded."""
    import numpy as np
    import pyarrow as pa

    chunks = [c for c in column.chunks if len(c)]
    first = chunks[0].dictionary if chunks else None
    if first is not None and not first.null_count and all(c.dictionary.equals(first) for c in chunks[1:]):
        indices = pa.concat_arrays([c.indices for c in chunks]).drop_null()
        values = first.cast(pa.large_binary()).take(indices)
    else:
        decoded = [c.cast(pa.string()).drop_null().cast(pa.large_binary()) for c in chunks]
        values = pa.concat_arrays(decoded) if decoded else pa.array([], type=pa.large_binary())
    valid = np.asarray(column.is_valid()) if column.null_count else np.ones(len(column), dtype=bool)
    return pa.LargeListArray.from_arrays(_list_offsets(valid), values)


def _float_list_column(column: Any) -> Any:
    """A float column -> large_list<float32>, a missing value or NaN -> an empty list: what
    the plain conversion makes of it."""
    import numpy as np
    import pyarrow as pa

    values = column.cast(pa.float32()).to_numpy()  # a missing value -> NaN
    valid = ~np.isnan(values)
    return pa.LargeListArray.from_arrays(_list_offsets(valid), pa.array(values[valid]))


# ---------------------------------------------------------------------- streaming

BATCH_MB_ENV = taskenv.BATCH_MB  # also a key of the cluster's kubetfx-settings ConfigMap
# Input per batch when a task reads a table batch by batch: CSV text, or Parquet column
# data uncompressed. A task's peak memory is a small multiple of it, whatever the row count.
DEFAULT_BATCH_MB = 32
# A CSV row (a quoted field left open) longer than this many batches is refused, not buffered.
MAX_ROW_BATCHES = 4


def batch_bytes(batch_mb: float | None = None) -> int:
    """Bytes of input per batch: ``batch_mb``, else ``$KUBETFX_BATCH_MB``, else ``DEFAULT_BATCH_MB``."""
    from kubetfx.errors import ConfigError

    raw = os.environ.get(BATCH_MB_ENV, "").strip() if batch_mb is None else str(batch_mb)
    if not raw:
        return DEFAULT_BATCH_MB * 2**20
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{BATCH_MB_ENV}={raw!r}: use a positive number of megabytes (e.g. 32)")
    return max(int(value * 2**20), 256)


def unified_type(types: Any) -> Any:
    """One column's type over parts of an input read separately (files, or pieces of one
    file): the type they share, a float when integers and floats mix, else text; a part
    with no value in the column (null type) does not count."""
    import pyarrow as pa

    kinds = set(types) - {pa.null()}
    if not kinds:
        return pa.string()
    if len(kinds) == 1:
        return kinds.pop()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in kinds):
        return pa.float64()
    return pa.string()


def csv_row_boundary(data: bytes) -> int:
    """Where the last complete CSV row in ``data`` ends (just after a newline outside any
    quoted field), 0 if none does. Quotes pair up in well-formed CSV (``""`` inside a
    quoted field too), so a newline with an even number of quotes before it ends a row."""
    quotes = data.count(b'"')
    end = data.rfind(b"\n")
    after = data.count(b'"', end + 1)  # in the unfinished line after the last newline
    while end >= 0:
        if (quotes - after) % 2 == 0:
            return end + 1
        previous = data.rfind(b"\n", 0, end)
        after += data.count(b'"', previous + 1, end + 1)
        end = previous
    return 0


def _last_row_start(text: str) -> int:
    """Characters before the start of the last row of ``text`` by Python's CSV reader (for
    which a quote inside an unquoted field, as in 5'10", is a plain character); 0 when the
    text holds a single row."""
    reader = csv.reader(io.StringIO(text))
    start, last_start = 1, 1
    for _ in reader:
        last_start, start = start, reader.line_num + 1
    offset = 0
    for _ in range(last_start - 1):
        offset = text.index("\n", offset) + 1
    return offset


class CsvFile:
    """One CSV file, read in pieces of whole rows of about ``size`` bytes each.

    The header is read and checked when the object is made; :meth:`tables` then reads
    the rows piece by piece, with errors that name the file, line and column. Memory:
    one piece (a row longer than a piece: up to ``MAX_ROW_BATCHES`` pieces, then an error).
    """

    def __init__(self, path: str, size: int, expected_header: list[str] | None, header_source: str) -> None:
        self.path, self.size = path, size
        with open(path, "rb") as f:
            head = f.read(size)
            while not csv_row_boundary(head) and len(head) < MAX_ROW_BATCHES * size:
                more = f.read(size)
                if not more:
                    break
                head += more
        # Excel's "CSV UTF-8" starts with a byte-order mark; it is not part of the first column's name.
        bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        head = head[bom:]
        if not head.strip():
            raise InputDataError(f"{path}: file is empty; expected a header line and rows")
        text = self._decode(head[: csv_row_boundary(head) or len(head)], 1)
        self.names = _header(path, text)
        reader = csv.reader(io.StringIO(text))
        next(reader)
        offset = 0
        for _ in range(reader.line_num):
            found = text.find("\n", offset)
            offset = len(text) if found < 0 else found + 1
        self.data_start = bom + len(text[:offset].encode())
        self.first_line = reader.line_num + 1
        if expected_header is not None and self.names != expected_header:
            missing = [c for c in expected_header if c not in self.names]
            extra = [c for c in self.names if c not in expected_header]
            detail = (
                (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"extra {extra}" if extra else "")
            )
            raise InputDataError(
                f"{path}:1: header differs from {header_source}: "
                f"{detail or 'same columns in another order'}; all files of one input must share a header"
            )

    def _decode(self, data: bytes, first_line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            line, column = _position(data, err.start)
            raise InputDataError(
                f"{self.path}:{first_line + line - 1}:{column}: byte 0x{data[err.start]:02x} is not "
                "valid UTF-8; save the file as UTF-8"
            ) from None

    def pieces(self) -> Iterator[tuple[bytes, str, int]]:
        """``(data, text, first_line)`` for each piece of complete data rows, in file order."""
        line = self.first_line
        with open(self.path, "rb") as f:
            f.seek(self.data_start)
            pending = b""
            while True:
                block = f.read(self.size)
                data = pending + block if pending else block
                if not block:
                    if data.strip():
                        yield data, self._decode(data, line), line
                    return
                cut = csv_row_boundary(data)
                if not cut and len(data) > MAX_ROW_BATCHES * self.size:
                    text = self._decode(data[: data.rfind(b"\n") + 1], line)
                    cut = len(text[: _last_row_start(text)].encode())
                    if not cut:
                        raise self._open_quote(text, line)
                if not cut:
                    pending = data
                    continue
                piece, pending = data[:cut], data[cut:]
                yield piece, self._decode(piece, line), line
                line += piece.count(b"\n")

    def _open_quote(self, text: str, line: int) -> InputDataError:
        column = ""
        last = next(csv.reader(io.StringIO(text)), [])
        multi_line = [i for i, cell in enumerate(last) if "\n" in cell]
        if multi_line and multi_line[0] < len(self.names):
            column = f" (column {self.names[multi_line[0]]!r})"
        return InputDataError(
            f"{self.path}:{line}: a quoted field{column} opens on this line and is not closed within "
            f"{MAX_ROW_BATCHES * self.size / 2**20:g} MB; close the quote (a quote inside a quoted "
            'field is written "")'
        )

    def read(self, data: bytes, text: str, line: int, types: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """One piece as a table (column types inferred, or ``types``), and the line each of
        its rows starts on (None if they cannot be matched)."""
        import pyarrow as pa
        from pyarrow import csv as pacsv

        with_header = "\n" + text  # a blank first line: lines count as in the file, less line - 2
        unclosed = _find_unclosed_quote(self.path, with_header, self.names, line - 2)
        if unclosed is not None:
            raise unclosed
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=self.names),
                convert_options=pacsv.ConvertOptions(
                    null_values=NULL_VALUES, strings_can_be_null=True, column_types=types
                ),
            )
        except pa.ArrowInvalid as err:
            raise (
                _find_ragged(self.path, with_header, len(self.names), line - 2)
                or InputDataError(f"{self.path}: cannot parse CSV (rows from line {line}): {err}")
            ) from None
        starts = record_lines(with_header, table.num_rows)
        return table, None if starts is None else starts + (line - 2)


class ParquetFile:
    """One Parquet file, read in batches of about ``size`` bytes of column data each."""

    def __init__(self, path: str, size: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if os.path.getsize(path) == 0:
            raise InputDataError(f"{path}: file is empty; expected a Parquet file")
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None
        self.path = path
        self.schema = self.file.schema_arrow
        metadata = self.file.metadata
        self.rows = metadata.num_rows
        if self.rows == 0:
            raise InputDataError(f"{path}: Parquet file has no rows")
        data = sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
        self.batch_rows = max(1024, int(size / max(data / self.rows, 1.0)))

    def tables(self) -> Iterator[Any]:
        import pyarrow as pa

        try:
            for batch in self.file.iter_batches(batch_size=self.batch_rows):
                yield pa.Table.from_batches([batch])
        except (pa.ArrowInvalid, OSError) as err:
            raise InputDataError(f"{self.path}: not a readable Parquet file ({err})") from None


SOURCE_FIELDS = ("file", "row", "line")


class TableScan:
    """Every file an input names, read batch by batch with bounded memory.

    Made, it has read every file once for the column types (a CSV column's type is
    decided by all its values, as when the whole file is read: a column of integers with
    one ``3.5`` is a float column); :meth:`batches` then yields ``(table, sources)`` in
    file and row order, each table of about ``batch_mb`` of input, in one schema
    (:attr:`schema`), and its rows' sources (file, row, line) as :func:`read_files` gives
    them. The tables together equal :func:`read_files`'s table (a test compares).
    """

    def __init__(self, files: list[str], file_format: str, batch_mb: float | None = None) -> None:
        import pyarrow as pa

        self.files, self.format = files, file_format
        size = batch_bytes(batch_mb)
        self.csv: list[CsvFile] = []
        self.parquet: list[ParquetFile] = []
        self.rows: list[int] = []
        types: dict[str, list[Any]] = {}
        if file_format == "csv":
            header: list[str] | None = None
            for path in files:
                source = CsvFile(path, size, header, files[0])
                header = header or source.names
                rows = 0
                for piece in source.pieces():
                    table, _ = source.read(*piece)
                    rows += table.num_rows
                    for name in source.names:
                        types.setdefault(name, []).append(table.schema.field(name).type)
                if rows == 0:
                    raise InputDataError(f"{path}: has a header but no data rows")
                self.csv.append(source)
                self.rows.append(rows)
            columns = list(header or [])
        else:
            for path in files:
                source_pq = ParquetFile(path, size)
                if self.parquet and source_pq.schema.names != self.parquet[0].schema.names:
                    raise InputDataError(
                        f"{path}: columns {source_pq.schema.names} differ from {files[0]}: "
                        f"{self.parquet[0].schema.names}"
                    )
                for field in source_pq.schema:
                    types.setdefault(field.name, []).append(field.type)
                self.parquet.append(source_pq)
                self.rows.append(source_pq.rows)
            columns = list(self.parquet[0].schema.names)
        self.schema = pa.schema([pa.field(n, unified_type(types.get(n, []))) for n in columns])
        self.column_names = columns
        self.num_rows = sum(self.rows)

    def batches(self) -> Iterator[tuple[Any, Any]]:
        """``(table, sources)`` batch by batch, every table in :attr:`schema`."""
        import numpy as np
        import pyarrow as pa

        names = pa.array([os.path.basename(f) for f in self.files])
        types = {f.name: f.type for f in self.schema}
        for number in range(len(self.files)):
            row = 0
            if self.format == "csv":
                source = self.csv[number]
                parts: Iterator[tuple[Any, Any]] = (source.read(*p, types=types) for p in source.pieces())
            else:
                parts = ((t, None) for t in self.parquet[number].tables())
            for table, starts in parts:
                n = table.num_rows
                if not n:
                    continue
                sources = pa.table(
                    {
                        "file": pa.DictionaryArray.from_arrays(np.full(n, number, dtype=np.int32), names),
                        "row": np.arange(row, row + n, dtype=np.int64),
                        "line": pa.nulls(n, pa.int64()) if starts is None else pa.array(starts, pa.int64()),
                    }
                )
                row += n
                yield table.cast(self.schema), sources


def scan_input(input_uri: str, input_format: str = "auto", batch_mb: float | None = None) -> TableScan:
    """A :class:`TableScan` of every file an input URI names (the same checks as ExampleGen)."""
    files, _ = resolve_input(input_uri)
    return TableScan(files, detect_format(files, input_format), batch_mb)
