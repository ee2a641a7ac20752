"""StatisticsGen: TFDV statistics for every split of an Examples artifact.

Two paths give the same statistics proto:

* **in memory** (default when a split's files total at most ``in_memory_max_mb``
  compressed): TFDV's in-memory statistics over Arrow, with no Beam start-up. The rows
  come from ExampleGen's columnar copy (``data.parquet``) when it is there, else from
  the TFRecords, decoded by tfx-bsl (about 20x slower to read), batch by batch
  (``$KUBETFX_BATCH_MB``), so memory does not grow with the rows. Large splits are
  computed by several processes, each on its own columns (see below);
* **Beam** otherwise: ``tfdv.GenerateStatistics`` in a Beam pipeline whose options pass
  through (DirectRunner in multi-process mode on this machine's cores by default; any
  runner by ``--runner=...``).

In memory, the statistics are TFDV's ``generate_statistics_in_memory``'s, byte for byte
(tests compare), computed at less cost:

* **per-column processes**: TFDV's statistics of one feature never depend on another
  feature (no schema, no cross-feature or lift statistics here), so disjoint groups of
  columns are computed in forked children of this process, in parallel
  (:func:`kubetfx.process.fork_map`), and their features joined in column order. A split
  of at least ``PARALLEL_MIN_CELLS`` cells (rows x columns) uses one process per CPU
  this process may use (affinity and cgroup quota); ``$KUBETFX_STATS_WORKERS`` sets the
  number (``1``: never fork). A child that fails or hangs changes nothing but the time:
  this process computes its columns;
* **read as stored**: each process reads only its columns of the columnar copy, string
  columns dictionary-encoded as parquet holds them;
* **top-k from counts**: TFDV's top-k and uniques sketches take each distinct value of
  a feature once, with its count, where that gives the same sketch (see
  ``_top_k_uniques_from_counts``).

Layout written: :mod:`kubetfx.artifacts.statistics` (``Split-<name>/FeatureStats.pb``).
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.artifacts import examples, statistics
from kubetfx.artifacts.kinds import STATISTICS, TYPE_KEY
from kubetfx.artifacts.tabular import batch_bytes, to_record_batch
from kubetfx.errors import ConfigError, InputDataError
from kubetfx.process import fork_map, usable_cpus

DEFAULT_IN_MEMORY_MAX_MB = 4096
DEFAULT_BEAM_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)

WORKERS_ENV = "KUBETFX_STATS_WORKERS"
# Below this many cells (rows x columns) one process: TFDV takes ~0.2 us a cell here, and
# a fork of a process with TensorFlow loaded costs ~20-50 ms.
PARALLEL_MIN_CELLS = 1_000_000


@dataclass
class StatisticsResult:
    """What was computed, per split."""

    num_examples: dict[str, int] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)  # split -> "in-memory" | "beam"

    def metadata(self, examples_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Artifact metadata: splits, counts and where the data came from."""
        import json

        examples_metadata = examples_metadata or {}
        meta: dict[str, Any] = {
            TYPE_KEY: STATISTICS,
            "split_names": json.dumps(list(self.num_examples)),
            "span": examples_metadata.get("span", 0),
            "examples_fingerprint": examples_metadata.get("fingerprint", ""),
            "path": dict(self.path),
        }
        for split, count in self.num_examples.items():
            meta[f"num_examples_{split}"] = count
        return meta


def stats_options(sample_rate: float = 1.0, schema: Any = None) -> Any:
    """TFDV options kubetfx uses everywhere (so both paths agree)."""
    import tensorflow_data_validation as tfdv

    return tfdv.StatsOptions(schema=schema, sample_rate=sample_rate if sample_rate < 1.0 else None)


def workers_from_env() -> int | None:
    """``$KUBETFX_STATS_WORKERS`` as a number of processes, or None (automatic) when unset."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{WORKERS_ENV}={raw!r}: use a whole number of processes, 1 or more (1: no fork)")
    return int(raw)


def processes_for(workers: int | None, rows: int, columns: int) -> int:
    """Processes for statistics of ``rows`` x ``columns``: ``workers`` if given (at most one
    a column), else one per usable CPU from ``PARALLEL_MIN_CELLS`` cells up."""
    if not hasattr(os, "fork"):
        return 1
    if workers is None:
        if rows * columns < PARALLEL_MIN_CELLS:
            return 1
        workers = usable_cpus()
    return max(1, min(workers, columns))


def _tfdv_statistics(batches: Any) -> Any:
    """TFDV's ``generate_statistics_in_memory``: the same generators with the same options
    on the same rows, so the same proto; two of their costs left out (see
    ``_top_k_uniques_from_counts``).

    ``batches``: one record batch, or record batches one after another (each generator's
    accumulator takes them in turn, as TFDV's Beam combiners do: memory is one batch and
    the generators' sketches, whatever the row count; one batch gives the one-pass bytes).
    """
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl
    from tensorflow_data_validation.statistics.generators import top_k_uniques_sketch_stats_generator as topk

    options = stats_options()
    generators = stats_impl.get_generators(options, in_memory=True)
    for generator in generators:
        if type(generator) is topk.TopKUniquesSketchStatsGenerator:
            generator.__class__ = _top_k_uniques_from_counts()  # adds methods, no state
    if isinstance(batches, pa.RecordBatch):
        partial = stats_impl.generate_partial_statistics_in_memory(batches, options, generators)
        return stats_impl.extract_statistics_output(partial, generators)
    partial = None
    for batch in batches:
        if partial is None:
            partial = stats_impl.generate_partial_statistics_in_memory(batch, options, generators)
        elif batch.num_rows:
            partial = [g.add_input(a, batch) for g, a in zip(generators, partial, strict=True)]
    if partial is None:
        raise InputDataError("no rows to compute statistics of")
    return stats_impl.extract_statistics_output(partial, generators)


# Float32 holds every whole number up to 2**24 exactly (the sketch takes float32 weights).
_EXACT_FLOAT32_COUNT = 2**24


@functools.cache
def _top_k_uniques_from_counts() -> type:
    """TFDV 1.16's top-k and uniques generator, with the same output at less cost.

    * Its Misra-Gries (top-k) and KMV (uniques) sketches took ~0.15 s per million string
      values, one value at a time. A Misra-Gries sketch that never holds more values than
      it has buckets counts exactly and in any order; a KMV sketch keeps a set of hashes.
      So for a feature with fewer distinct values than the top-k sketch's buckets (1,024),
      each distinct value goes in once, with its count as weight (Arrow counts them in
      ~0.02 s per million): the same sketches, so the same statistics. Weighted features,
      more distinct values, counts above 2**24 or a sketch that already holds values go
      the usual way, and so do features with values of 1,024 bytes or more (one at a time,
      the sketch counts them all as one placeholder value).
    * With probability 1% per string feature and batch, TFDV walks every value of the
      feature in Python to count value lengths into a Beam metrics counter
      (binary_scalar_len_*): ~4 s per million values, for a counter that goes nowhere
      outside a Beam pipeline. The in-memory path is one batch per split, so it was a
      10% chance of 4 s more (20 columns, 1 M rows). Turned off.

    A test compares the output with ``generate_statistics_in_memory``'s byte for byte.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from tensorflow_data_validation.statistics.generators import top_k_uniques_sketch_stats_generator as topk
    from tfx_bsl.arrow import array_util

    long_value = getattr(topk, "_LARGE_STRING_THRESHOLD", 0)  # 1,024; 0: never counted

    class TopKUniquesFromCounts(topk.TopKUniquesSketchStatsGenerator):
        def add_input(self, accumulator: Any, input_record_batch: Any) -> Any:
            self._length_counter_sampling_rate = 0.0
            return super().add_input(accumulator, input_record_batch)

        def _update_combined_sketch_for_feature(
            self, feature_name: Any, values: Any, weights: Any, accumulator: dict
        ) -> None:
            counted = None
            if weights is None and feature_name not in accumulator:
                counted = self._distinct_values_and_counts(values)
            if counted is None:
                super()._update_combined_sketch_for_feature(feature_name, values, weights, accumulator)
                return
            # TFDV makes the feature's sketches (from no values), then they take the counts.
            super()._update_combined_sketch_for_feature(feature_name, values.slice(0, 0), None, accumulator)
            sketch = accumulator[feature_name]
            sketch._distinct.AddValues(counted[0])
            sketch._topk_unweighted.AddValues(*counted)

        def _distinct_values_and_counts(self, values: Any) -> tuple[Any, Any] | None:
            flat, _ = array_util.flatten_nested(values)
            binary = pa.types.is_binary(flat.type) or pa.types.is_large_binary(flat.type)
            if not (binary or pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type)):
                return None
            if flat.null_count:
                return None
            # the top-k sketch's buckets, as TFDV sizes it
            buckets = max(
                self._num_misragries_buckets, self._num_top_values, self._num_rank_histogram_buckets
            )
            counted = pc.value_counts(flat)
            if len(counted) >= buckets:
                return None
            distinct, counts = counted.field("values"), counted.field("counts").to_numpy()
            if len(counts) and counts.max() > _EXACT_FLOAT32_COUNT:
                return None
            # The sketch puts one placeholder for all long values when it takes them one at
            # a time, not when it takes them with weights.
            if len(distinct) and pc.max(pc.binary_length(distinct)).as_py() >= long_value:
                return None
            return distinct, pa.array(counts.astype(np.float32))

    return TopKUniquesFromCounts


def _sample(records: Iterable[bytes], sample_rate: float, seed: int = 0) -> Iterator[bytes]:
    if sample_rate >= 1.0:
        yield from records
        return
    rng = random.Random(seed)
    yield from (r for r in records if rng.random() < sample_rate)


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _column_weight(arrow_type: Any) -> float:
    """Relative cost of one column's statistics, measured per million rows: a number ~0.18
    CPU-s (TFDV's quantiles sketch takes most), a string of a few distinct values ~0.12
    (one of many distinct values more, ~0.25, which the schema does not tell)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    binary = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    binary = binary or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
    return 1.0 if binary else 1.5


def column_groups(schema: Any, processes: int) -> list[list[str]]:
    """Columns of ``schema`` in ``processes`` groups of about equal cost (each in column order)."""
    names = list(schema.names)
    weights = [_column_weight(schema.field(i).type) for i in range(len(names))]
    loads = [0.0] * processes
    groups: list[list[int]] = [[] for _ in range(processes)]
    for i in sorted(range(len(names)), key=lambda i: -weights[i]):  # heaviest first (stable)
        least = loads.index(min(loads))
        groups[least].append(i)
        loads[least] += weights[i]
    return [[names[i] for i in sorted(group)] for group in groups if group]


def join_features(parts: Sequence[Any], columns: Sequence[str], name: str) -> Any:
    """One DatasetFeatureStatisticsList from per-column-group results of the same rows,
    features in column order (the order TFDV gives them in one pass)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    datasets = [part.datasets[0] for part in parts]
    first = datasets[0]
    for other in datasets[1:]:
        counts = (other.num_examples, other.weighted_num_examples)
        if counts != (first.num_examples, first.weighted_num_examples):
            raise RuntimeError(  # cannot happen: every group reads the same rows
                f"split {name!r}: column groups counted {counts[0]} and {first.num_examples} examples"
            )
    position = {column: i for i, column in enumerate(columns)}
    features = [feature for dataset in datasets for feature in dataset.features]
    features.sort(key=lambda f: position.get(f.path.step[0] if f.path.step else f.name, len(position)))
    result = statistics_pb2.DatasetFeatureStatisticsList()
    joined = result.datasets.add()
    joined.CopyFrom(first)
    del joined.features[:]
    joined.features.extend(features)
    for dataset in datasets[1:]:
        joined.cross_features.extend(dataset.cross_features)
    return result


def statistics_by_columns(
    load: Callable[[list[str]], Any], schema: Any, name: str, processes: int = 1
) -> Any:
    """Statistics of the record batch ``load(columns)`` returns for every column of ``schema``.

    With ``processes`` > 1, groups of columns are computed in forked children in
    parallel (``load`` runs in each child, on its group's columns) and joined.
    """
    columns = list(schema.names)
    groups = column_groups(schema, processes) if processes > 1 else [columns]

    def work(group: list[str]) -> bytes:
        return _tfdv_statistics(load(group)).SerializeToString()

    from tensorflow_metadata.proto.v0 import statistics_pb2

    results = fork_map(work, groups, what="statistics", describe=lambda group: f"{len(group)} columns")
    parts = [statistics_pb2.DatasetFeatureStatisticsList.FromString(b) for b in results]
    stats = parts[0] if len(parts) == 1 else join_features(parts, columns, name)
    stats.datasets[0].name = name
    return stats


# Serialized tf.Examples decoded at a time when a split has no columnar copy.
RECORDS_PER_BATCH = 65_536


def statistics_in_memory(
    records: Iterable[bytes], name: str, sample_rate: float = 1.0, workers: int | None = 1
) -> Any:
    """Statistics of serialized tf.Examples, computed in this process (and its children).

    A list is decoded once and split by column over ``workers`` processes; any other
    iterable (a split's files read as they go) is decoded ``RECORDS_PER_BATCH`` at a time in
    this process, so memory stays one batch whatever the row count.
    """
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    if not isinstance(records, list):
        batches = (decoder.DecodeBatch(c) for c in _chunks(_sample(records, sample_rate), RECORDS_PER_BATCH))
        try:
            return _named(_tfdv_statistics(batches), name)
        except InputDataError:
            raise InputDataError(f"split {name!r} has no examples to compute statistics of") from None
    records = list(_sample(records, sample_rate))
    if not records:
        raise InputDataError(f"split {name!r} has no examples to compute statistics of")
    batch = decoder.DecodeBatch(records)

    def load(columns: list[str]) -> Any:
        return pa.RecordBatch.from_arrays(
            [batch.column(batch.schema.get_field_index(c)) for c in columns], columns
        )

    processes = processes_for(workers, batch.num_rows, batch.num_columns)
    return statistics_by_columns(load, batch.schema, name, processes)


def _named(stats: Any, name: str) -> Any:
    stats.datasets[0].name = name
    return stats


def statistics_of_columnar(
    path: str, name: str, sample_rate: float = 1.0, workers: int | None = 1, batch_mb: float | None = None
) -> Any:
    """Statistics from ExampleGen's columnar copy of a split (same rows as its TFRecords).

    ``workers``: processes (None: by size and CPUs, see ``PARALLEL_MIN_CELLS``); each
    reads only its own columns, batch by batch (``batch_mb`` of column data at a time:
    None, ``$KUBETFX_BATCH_MB``, else 32 MB), so memory does not grow with the rows.
    """
    import numpy as np
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    rows = parquet.metadata.num_rows
    keep = None
    if sample_rate < 1.0:
        keep = np.random.default_rng(0).random(rows) < sample_rate
        rows = int(keep.sum())
    if rows == 0:
        raise InputDataError(f"split {name!r} has no examples to compute statistics of")
    size = batch_bytes(batch_mb)

    def load(columns: list[str]) -> Any:
        start = 0
        for table in read_column_batches(path, columns, size):
            n = table.num_rows
            if keep is not None:
                table = table.filter(keep[start : start + n])
            start += n
            yield to_record_batch(table, shortcuts=True)

    return statistics_by_columns(load, schema, name, processes_for(workers, rows, len(schema.names)))


def read_column_batches(path: str, columns: list[str], size: int) -> Iterator[Any]:
    """Some columns of a parquet file as tables of about ``size`` bytes of column data each,
    read as :func:`read_columns` reads them whole (strings stored dictionary-encoded come
    back dictionary-encoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    dictionary = _dictionary_columns(parquet, columns)
    if dictionary:
        parquet = pq.ParquetFile(path, read_dictionary=dictionary)
    metadata = parquet.metadata
    share = len(columns) / max(len(parquet.schema_arrow.names), 1)
    data = share * sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    rows = max(1024, int(size / max(data / max(metadata.num_rows, 1), 1.0)))
    for batch in parquet.iter_batches(batch_size=rows, columns=columns):
        yield pa.Table.from_batches([batch])


def _dictionary_columns(parquet: Any, columns: list[str]) -> list[str]:
    """The string columns a parquet file holds dictionary-encoded throughout."""
    import pyarrow as pa

    schema = parquet.schema_arrow
    if parquet.metadata.num_columns != len(schema.names):  # not flat: read as stored
        return []
    strings = [c for c in columns if pa.types.is_string(schema.field(c).type)]
    return [c for c in strings if _dictionary_encoded(parquet, schema.get_field_index(c))]


def read_columns(path: str, columns: list[str]) -> Any:
    """Some columns of a parquet file; string columns that the file holds dictionary-encoded
    come back dictionary-encoded (not decoded value by value: ~5x faster to read)."""
    import pyarrow.parquet as pq

    dictionary = _dictionary_columns(pq.ParquetFile(path), columns)
    return pq.read_table(path, columns=columns, read_dictionary=dictionary or None)


def _dictionary_encoded(parquet: Any, index: int) -> bool:
    """Whether every data page of a (flat) column is dictionary-encoded: Arrow's writer lists
    PLAIN once (the dictionary page) unless the dictionary overflowed and it fell back
    to plain pages. Reading a fallen-back column as a dictionary is slower (it hashes
    every value), never different."""
    metadata = parquet.metadata
    for g in range(metadata.num_row_groups):
        chunk = metadata.row_group(g).column(index)
        if not chunk.has_dictionary_page or chunk.encodings.count("PLAIN") > 1:
            return False
    return True


def statistics_of_table(table: Any, name: str, workers: int | None = 1) -> Any:
    """Statistics of a pyarrow Table (serving samples), with the same options; or of a
    :class:`~kubetfx.artifacts.tabular.TableScan`, batch by batch in this process (memory:
    one batch, whatever the input's size)."""
    if hasattr(table, "batches"):
        return _named(_tfdv_statistics(to_record_batch(t) for t, _ in table.batches()), name)

    def load(columns: list[str]) -> Any:
        return to_record_batch(table.select(columns))

    processes = processes_for(workers, table.num_rows, table.num_columns)
    return statistics_by_columns(load, table.schema, name, processes)


def _statistics_with_beam(pattern: str, out_file: str, sample_rate: float, beam_args: Sequence[str]) -> None:
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    source = tfxio.TFExampleRecord(file_pattern=pattern, telemetry_descriptors=["kubetfx"])
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        _ = (
            pipeline
            | "Read" >> source.BeamSource()
            | "Stats" >> tfdv.GenerateStatistics(stats_options(sample_rate))
            | "Write" >> tfdv.WriteStatisticsToBinaryFile(out_file)
        )


def run(
    examples_dir: str,
    output_dir: str,
    *,
    sample_rate: float = 1.0,
    in_memory_max_mb: int = DEFAULT_IN_MEMORY_MAX_MB,
    beam_pipeline_args: Sequence[str] = (),
    workers: int | None = None,
) -> StatisticsResult:
    """Compute and write statistics for every split of ``examples_dir``.

    ``workers``: processes for the in-memory path; None: ``$KUBETFX_STATS_WORKERS``, else
    one per usable CPU for splits of at least ``PARALLEL_MIN_CELLS`` cells.
    """
    import tensorflow_data_validation as tfdv

    if workers is None:
        workers = workers_from_env()
    elif workers < 1:
        raise ConfigError(f"workers {workers}: use 1 or more processes")
    if not 0.0 < sample_rate <= 1.0:
        raise InputDataError(f"sample_rate {sample_rate} must be in (0, 1]")
    from kubetfx.beam import beam_args as checked_beam_args
    from kubetfx.beam import split_args

    # Checked (an unknown option is an error naming it); without --runner, after
    # DEFAULT_BEAM_ARGS: never let Beam try to download a runner.
    beam_args = checked_beam_args(beam_pipeline_args, DEFAULT_BEAM_ARGS)
    if split_args(beam_pipeline_args):
        in_memory_max_mb = -1  # Beam options given: every split on Beam with them
    result = StatisticsResult()
    for split in examples.split_names(examples_dir):
        files = examples.split_files(examples_dir, split)
        out_file = Path(statistics.path(output_dir, split))
        out_file.parent.mkdir(parents=True, exist_ok=True)
        size_mb = sum(os.path.getsize(f) for f in files) / 2**20
        columnar = examples.columnar_path(examples_dir, split)
        if size_mb <= in_memory_max_mb and columnar is not None:
            stats = statistics_of_columnar(columnar, split, sample_rate, workers)
            statistics.write(output_dir, split, stats)
            result.path[split] = "in-memory (columnar copy)"
        elif size_mb <= in_memory_max_mb:
            stats = statistics_in_memory(
                examples.iter_records(examples_dir, split), split, sample_rate, workers
            )
            statistics.write(output_dir, split, stats)
            result.path[split] = "in-memory"
        else:
            _statistics_with_beam(
                examples.split_pattern(examples_dir, split), str(out_file), sample_rate, beam_args
            )
            stats = tfdv.load_stats_binary(str(out_file))
            stats.datasets[0].name = split
            statistics.write(output_dir, split, stats)
            result.path[split] = "beam"
        result.num_examples[split] = int(stats.datasets[0].num_examples)
    return result
