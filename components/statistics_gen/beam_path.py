"""Statistics of tabular input (CSV, Parquet) on Beam: the serving sample the
ExampleValidator compares with, read by Beam workers a piece at a time
(:func:`kubetfx.beam.read_tabular`) and summarized by TFDV's own ``GenerateStatistics``
with the options both in-process paths use (:func:`.executor.stats_options`).

A split of an Examples artifact goes through Beam in :mod:`.executor` (it reads the
TFRecords); this module is for data that is not yet examples.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from kubetfx.components.statistics_gen.executor import stats_options

from kubetfx.artifacts.tabular import detect_format, resolve_input


def _record_batch(piece: tuple[int, Any, Any]) -> Any:
    from kubetfx.artifacts.tabular import to_record_batch

    return to_record_batch(piece[1])


def statistics_of_input(
    input_uri: str, name: str, beam_pipeline_args: Sequence[str] | str, input_format: str = "auto"
) -> Any:
    """TFDV statistics of every row ``input_uri`` names, computed on Beam; the dataset is
    named ``name``."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv

    from kubetfx.beam import input_error, pipeline_options, read_tabular

    options = pipeline_options(beam_pipeline_args)
    files, _ = resolve_input(input_uri)
    file_format = detect_format(files, input_format)
    with tempfile.TemporaryDirectory(prefix="kubetfx-beam-stats-") as folder:
        out_file = os.path.join(folder, "stats.pb")
        try:
            with beam.Pipeline(options=options) as pipeline:
                pieces, _ = read_tabular(pipeline, files, file_format)
                _ = (
                    pieces
                    | "ToArrow" >> beam.Map(_record_batch)
                    | "Stats" >> tfdv.GenerateStatistics(stats_options())
                    | "Write" >> tfdv.WriteStatisticsToBinaryFile(out_file)
                )
        except Exception as err:  # a worker's error comes back as the runner's
            raised = input_error(err)
            if raised is err:
                raise
            raise raised from None
        stats = tfdv.load_stats_binary(out_file)
    stats.datasets[0].name = name
    return stats
