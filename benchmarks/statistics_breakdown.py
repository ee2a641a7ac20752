"""Where StatisticsGen's in-memory time goes, step by step, before and after (docs/profile.md).

    python -m benchmarks.statistics_breakdown [--rows 1000000] [--columns 20]

On the statistics benchmark's synthetic data, in one process, each step timed on its own
(seconds, repeats in order): reading the columnar copy into TFDV's record batch the plain
way and as stored; TFDV's ``generate_statistics_in_memory`` and StatisticsGen's cheaper
route to the same proto; ``statistics_of_columnar`` with one and two processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.statistics import generate


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, list[float]]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return result, seconds


def main() -> None:
    """Print the steps' timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import pyarrow.parquet as pq
    from tensorflow_data_validation.statistics import stats_impl

    from kubetfx.artifacts import layout, tabular
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "synthetic.csv")
        generate(csv, args.rows, args.columns)
        example_gen.run(str(csv), str(Path(tmp, "examples")), splits="train:1")
        path = str(Path(tmp, "examples", "Split-train", layout.COLUMNAR_FILE))
        names = pq.read_schema(path).names
        plain, read_plain = _timed(lambda: tabular.to_record_batch(pq.read_table(path)), 3)
        stored, read_stored = _timed(
            lambda: tabular.to_record_batch(statistics_gen.read_columns(path, names), shortcuts=True), 3
        )
        options = statistics_gen.stats_options()
        _, tfdv = _timed(lambda: stats_impl.generate_statistics_in_memory(plain, options), 5)
        _, ours = _timed(lambda: statistics_gen._tfdv_statistics(stored), 5)
        _, one = _timed(lambda: statistics_gen.statistics_of_columnar(path, "train", workers=1), 3)
        _, two = _timed(lambda: statistics_gen.statistics_of_columnar(path, "train", workers=2), 3)
    print(f"{args.rows:,} rows x {args.columns} columns; load average {os.getloadavg()[0]:.1f}")
    for label, seconds in (
        ("read parquet + table_to_record_batch (before)", read_plain),
        ("read as stored + to_record_batch (now)", read_stored),
        ("TFDV generate_statistics_in_memory (before)", tfdv),
        ("TFDV's generators, top-k from counts, no counter (now)", ours),
        ("statistics_of_columnar, 1 process", one),
        ("statistics_of_columnar, 2 processes", two),
    ):
        timings = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{label:56} {timings} (median {statistics.median(seconds):.2f})")


if __name__ == "__main__":
    main()
