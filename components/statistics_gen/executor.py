"""StatisticsGen: TFDV statistics for every split of an Examples artifact.

Two paths give the same statistics proto:

* **in memory** (default when a split's files total at most ``in_memory_max_mb``
  compressed): TFDV's ``generate_statistics_in_memory`` over Arrow, with no Beam
  start-up. The rows come from ExampleGen's columnar copy (``data.parquet``) when it is
  there, else from the TFRecords, decoded by tfx-bsl (about 20x slower to read);
* **Beam** otherwise: ``tfdv.GenerateStatistics`` in a Beam pipeline whose options pass
  through (DirectRunner in multi-process mode on this machine's cores by default; any
  runner by ``--runner=...``).

Layout written: ``Split-<name>/FeatureStats.pb`` (binary DatasetFeatureStatisticsList).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import InputDataError
from kubetfx.tfrecord import read_tfrecord_gz, split_files, split_names, split_pattern
from kubetfx.types import STATISTICS, TYPE_KEY

COLUMNAR_FILE = "data.parquet"  # written by ExampleGen next to the TFRecords

DEFAULT_IN_MEMORY_MAX_MB = 256
DEFAULT_BEAM_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)
STATS_FILE = "FeatureStats.pb"


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


def _sample(records: list[bytes], sample_rate: float, seed: int = 0) -> list[bytes]:
    if sample_rate >= 1.0:
        return records
    rng = random.Random(seed)
    return [r for r in records if rng.random() < sample_rate]


def statistics_in_memory(records: list[bytes], name: str, sample_rate: float = 1.0) -> Any:
    """Statistics of serialized tf.Examples, computed in this process."""
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    records = _sample(records, sample_rate)
    if not records:
        raise InputDataError(f"split {name!r} has no examples to compute statistics of")
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    stats = stats_impl.generate_statistics_in_memory(batch, stats_options())
    stats.datasets[0].name = name
    return stats


def statistics_of_columnar(path: str, name: str, sample_rate: float = 1.0) -> Any:
    """Statistics from ExampleGen's columnar copy of a split (same rows as its TFRecords)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if sample_rate < 1.0:
        rng = np.random.default_rng(0)
        table = table.filter(rng.random(table.num_rows) < sample_rate)
    if table.num_rows == 0:
        raise InputDataError(f"split {name!r} has no examples to compute statistics of")
    return statistics_of_table(table, name)


def statistics_of_table(table: Any, name: str) -> Any:
    """Statistics of a pyarrow Table (serving samples), with the same options."""
    from kubetfx.components.example_gen.executor import table_to_record_batch
    from tensorflow_data_validation.statistics import stats_impl

    stats = stats_impl.generate_statistics_in_memory(table_to_record_batch(table), stats_options())
    stats.datasets[0].name = name
    return stats


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
) -> StatisticsResult:
    """Compute and write statistics for every split of ``examples_dir``."""
    import tensorflow_data_validation as tfdv

    if not 0.0 < sample_rate <= 1.0:
        raise InputDataError(f"sample_rate {sample_rate} must be in (0, 1]")
    beam_args = list(beam_pipeline_args) or list(DEFAULT_BEAM_ARGS)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args = [*DEFAULT_BEAM_ARGS, *beam_args]  # never let Beam try to download a runner
    result = StatisticsResult()
    for split in split_names(examples_dir):
        files = split_files(examples_dir, split)
        out_file = Path(output_dir, f"Split-{split}", STATS_FILE)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        size_mb = sum(os.path.getsize(f) for f in files) / 2**20
        columnar = Path(examples_dir, f"Split-{split}", COLUMNAR_FILE)
        if size_mb <= in_memory_max_mb and columnar.exists():
            stats = statistics_of_columnar(str(columnar), split, sample_rate)
            out_file.write_bytes(stats.SerializeToString())
            result.path[split] = "in-memory (columnar copy)"
        elif size_mb <= in_memory_max_mb:
            records = [r for f in files for r in read_tfrecord_gz(f)]
            stats = statistics_in_memory(records, split, sample_rate)
            out_file.write_bytes(stats.SerializeToString())
            result.path[split] = "in-memory"
        else:
            _statistics_with_beam(split_pattern(examples_dir, split), str(out_file), sample_rate, beam_args)
            stats = tfdv.load_stats_binary(str(out_file))
            stats.datasets[0].name = split
            out_file.write_bytes(stats.SerializeToString())
            result.path[split] = "beam"
        result.num_examples[split] = int(stats.datasets[0].num_examples)
    return result


def load(statistics_dir: str, split: str) -> Any:
    """Read one split's statistics back."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    path = Path(statistics_dir, f"Split-{split}", STATS_FILE)
    if not path.exists():
        raise InputDataError(f"{statistics_dir}: no statistics for split {split!r} ({path.name} missing)")
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())


def splits_of(statistics_dir: str) -> list[str]:
    """Splits that have statistics (train first)."""
    names = [p.parent.name[len("Split-") :] for p in Path(statistics_dir).glob(f"Split-*/{STATS_FILE}")]
    return sorted(names, key=lambda n: (n != "train", n != "eval", n))
