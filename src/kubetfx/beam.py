"""Beam pipeline options for every component with a Beam path, parsed in one place.

ExampleGen, StatisticsGen, ExampleValidator and the Evaluator take ``beam_pipeline_args``:
a list of Beam options (``["--runner=PortableRunner", "--job_endpoint=..."]``), or the
same as one string (a JSON list, or options separated by spaces, as a shell splits
them). :func:`beam_args` checks them and :func:`pipeline_options` builds Beam's
``PipelineOptions``:

* without ``--runner`` the DirectRunner runs in multi-process mode on this machine's
  cores (``DEFAULT_ARGS``): nothing is downloaded, no job server is needed;
* an option Beam does not know, a value it cannot parse or an argument that is not an
  option is an error naming the argument (Beam itself would drop it with a log line, and
  the job would run with a setting the user did not ask for).

Nothing here imports Beam at module import: composing a pipeline stays light.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from kubetfx.errors import ConfigError

DEFAULT_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)
PARAMETER = "beam_pipeline_args"
_OPTION = re.compile(r"--([A-Za-z_][A-Za-z0-9_-]*)(=.*)?", re.DOTALL)


def split_args(args: str | Sequence[Any] | None) -> list[str]:
    """``beam_pipeline_args`` as a list of strings: a list as given, a string that is a
    JSON list parsed, any other string split as a shell splits it."""
    if args is None:
        return []
    if isinstance(args, str):
        text = args.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{PARAMETER} {text!r}: not a JSON list of options ({err})") from None
            return split_args(parsed)
        try:
            return shlex.split(text)
        except ValueError as err:
            raise ConfigError(f"{PARAMETER} {text!r}: cannot split into options ({err})") from None
    if not isinstance(args, Sequence):
        raise ConfigError(f"{PARAMETER}: expected a list of options, got {type(args).__name__}")
    out = []
    for item in args:
        if not isinstance(item, str):
            raise ConfigError(f"{PARAMETER}: {item!r} is not a string; write each option as '--name=value'")
        out.append(item)
    return out


def beam_args(args: str | Sequence[Any] | None, defaults: Sequence[str] = DEFAULT_ARGS) -> list[str]:
    """The checked options, after ``defaults`` (the DirectRunner's, multi-process) when no
    ``--runner`` is given.

    Raises ConfigError naming the argument that is not an option, that Beam does not
    know, or whose value Beam cannot parse.
    """
    given = split_args(args)
    _check(given)
    if not any(_name(a) == "runner" for a in given if a.startswith("--")):
        given = [*defaults, *given]  # never let Beam look for (or download) a runner
    return given


def pipeline_options(args: str | Sequence[Any] | None, **overrides: Any) -> Any:
    """Beam ``PipelineOptions`` from ``beam_pipeline_args`` (checked, defaults added)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(beam_args(args), **overrides)


def runner_name(args: Sequence[str]) -> str:
    """The runner the (checked) options name, e.g. ``DirectRunner``."""
    runner = "DirectRunner"
    for i, arg in enumerate(args):
        if _name(arg) == "runner":
            runner = arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
    return runner


def _name(arg: str) -> str:
    match = _OPTION.fullmatch(arg)
    return match.group(1).replace("-", "_") if match else ""


def _check(args: list[str]) -> None:
    i = 0
    while i < len(args):
        arg = args[i]
        if not _OPTION.fullmatch(arg):
            raise ConfigError(
                f"{PARAMETER}: {arg!r} is not a Beam option; write options as '--name=value'"
                " (e.g. '--runner=PortableRunner')"
            )
        # "--name value": the value is the next argument when it is not an option itself
        if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--"):
            i += 1
        i += 1
    if not args:
        return
    parser = _parser()
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        one = (
            [arg] if "=" in arg or i + 1 >= len(args) or args[i + 1].startswith("--") else [arg, args[i + 1]]
        )
        try:
            _, unknown = parser.parse_known_args(one)
        except SystemExit:  # argparse's answer to a bad value
            raise ConfigError(
                f"{PARAMETER}: {' '.join(one)!r}: Beam cannot parse this value"
                f" (see `python -m apache_beam.options.pipeline_options` help for {arg.split('=')[0]})"
            ) from None
        if unknown:
            raise ConfigError(
                f"{PARAMETER}: {arg!r} is not an option of Beam's runners (check its spelling;"
                " runner options are listed in docs/beam.md)"
            )


def _parser() -> Any:
    """An argument parser holding every Beam option this Beam knows, built as Beam's own
    ``PipelineOptions.get_all_options`` builds it (the last class of each name wins)."""
    from apache_beam.options import pipeline_options as po

    class Quiet(po._BeamArgumentParser):
        def error(self, message: str) -> Any:  # no usage text on stderr: we say what is wrong
            raise SystemExit(2)

    parser = Quiet(allow_abbrev=False)
    subset: dict[str, type] = {}
    for cls in po.PipelineOptions.__subclasses__():
        subset.setdefault(str(cls), cls)
    for cls in subset.values():
        cls._add_argparse_args(parser)
    return parser


# ---------------------------------------------------------------------- tabular input on Beam


def read_units(files: Sequence[str], file_format: str) -> list[tuple[int, int, int, int]]:
    """The pieces a Beam pipeline reads an input in, in input order: one per CSV file, one
    per Parquet row group. Each is ``(ordinal, file index, row group or -1, first row)``
    (the row, among its file's data rows, the piece starts at)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubetfx.errors import InputDataError

    units: list[tuple[int, int, int, int]] = []
    for number, path in enumerate(files):
        if file_format == "csv":
            units.append((len(units), number, -1, 0))
            continue
        try:
            metadata = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError) as err:
            raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None
        if metadata.num_rows == 0:
            raise InputDataError(f"{path}: Parquet file has no rows")
        first = 0
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            if rows:
                units.append((len(units), number, group, first))
            first += rows
    return units


def csv_header(path: str) -> list[str]:
    """The column names on a CSV file's first line (what every other file must repeat)."""
    import codecs
    import csv

    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        first = next(csv.reader(f), [])
    if first:
        first[0] = first[0].removeprefix(codecs.BOM_UTF8.decode())
    return [c.strip() for c in first]


def read_unit(
    unit: tuple[int, int, int, int], files: Sequence[str], file_format: str, header: list[str] | None
) -> tuple[int, Any, Any]:
    """One piece of the input (see :func:`read_units`): ``(ordinal, table, sources)``, read
    and checked as the in-process reader reads a file (:mod:`kubetfx.artifacts.tabular`),
    with the same per-row sources (file, row, line)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubetfx.artifacts import tabular

    ordinal, number, group, first = unit
    path = files[number]
    starts = None
    if file_format == "csv":
        table, starts = tabular._read_csv(path, header if number else None, files[0])
    else:
        table = pq.ParquetFile(path).read_row_group(group)
    rows = table.num_rows
    sources = pa.table(
        {
            "file": pa.DictionaryArray.from_arrays(
                pa.array(np.full(rows, number, dtype=np.int32)),
                pa.array([_basename(f) for f in files]),
            ),
            "row": np.arange(first, first + rows, dtype=np.int64),
            "line": pa.nulls(rows, pa.int64()) if starts is None else pa.array(starts, pa.int64()),
        }
    )
    return ordinal, table, sources


def unify_schemas(schemas: Sequence[tuple[int, str, Any]]) -> Any:
    """The schema every piece is cast to: the in-process reader's rule for columns whose
    types differ between files (:func:`kubetfx.artifacts.tabular._unify`), applied to
    ``(ordinal, path, schema)`` of every piece, in input order."""
    from kubetfx.artifacts import tabular

    ordered = sorted(schemas, key=lambda s: s[0])
    return tabular._unify([s[2].empty_table() for s in ordered], [s[1] for s in ordered]).schema


def _basename(path: str) -> str:
    import os

    return os.path.basename(path)


def read_tabular(
    pipeline: Any, files: Sequence[str], file_format: str, label: str = "Input"
) -> tuple[Any, Any]:
    """Read ``files`` in a Beam pipeline, one piece per element (see :func:`read_units`).

    Returns ``(pieces, schema)``: a PCollection of ``(ordinal, table, sources)`` with every
    table cast to the unified schema, and that schema as a singleton side input.
    """
    import apache_beam as beam

    files = list(files)
    header = csv_header(files[0]) if file_format == "csv" else None
    units = read_units(files, file_format)
    raw = (
        pipeline
        | f"{label}Pieces" >> beam.Create(units)
        | f"{label}Spread" >> beam.Reshuffle()
        | f"{label}Read" >> beam.Map(read_unit, files, file_format, header)
    )
    schema = beam.pvalue.AsSingleton(
        raw
        | f"{label}Schemas" >> beam.Map(lambda piece: (piece[0], files[units[piece[0]][1]], piece[1].schema))
        | f"{label}AllSchemas" >> beam.combiners.ToList()
        | f"{label}Unify" >> beam.Map(unify_schemas)
    )
    cast = raw | f"{label}Cast" >> beam.Map(lambda piece, s: (piece[0], piece[1].cast(s), piece[2]), schema)
    return cast, schema


def input_error(err: BaseException) -> BaseException:
    """An error a Beam worker raised, as the error it was: a worker's InputDataError or
    ConfigError comes back inside the runner's error text (or, from an in-process runner,
    as itself with the Beam step's name appended); it is raised again with its own
    message (which names the file, line and column), anything else as it came."""
    from kubetfx.errors import InputDataError

    text = str(err)
    for kind in (InputDataError, ConfigError):
        if isinstance(err, kind):
            message = text
        else:
            match = re.search(rf"\b{kind.__name__}: (.+)", text)
            if not match:
                continue
            message = match.group(1)
        message = re.sub(r"\s*\[while running '[^\]]*'\]", "", message)  # Beam's step name
        return kind(message.strip().strip("'\"").replace("\\'", "'"))
    return err
