"""StatisticsGen throughput against a pyarrow/numpy baseline on the same synthetic CSV.

    python -m kubetfx.benchmarks.statistics [--rows 1000000] [--columns 20] [--beam]

The data comes from a seeded generator (half numeric, half categorical, 2% missing).
Each side is timed in this process, reading the same file:

* baseline: pyarrow reads the CSV, and per column computes count, missing, mean, std,
  min, max, zeros (numeric) or unique and top-10 values (categorical);
* StatisticsGen (in memory): its executor on the Examples ExampleGen wrote from that CSV
  (reading TFRecords, decoding, TFDV statistics), the path it picks for data that fits;
* StatisticsGen (Beam, DirectRunner multi-process), with ``--beam``.

Rows per second are reported side by side, with the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def generate(path: Path, rows: int, columns: int, seed: int = 7) -> None:
    """Write the synthetic CSV: numeric and categorical columns with some missing cells."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    data = {}
    for i in range(columns):
        missing = rng.random(rows) < 0.02
        if i % 2 == 0:
            values = rng.normal(100 + i, 15, rows).round(3)
            data[f"num_{i}"] = pa.array(values, mask=missing)
        else:
            vocabulary = np.array([f"cat_{i}_{k}" for k in range(5 + 10 * i)])
            data[f"cat_{i}"] = pa.array(vocabulary[rng.integers(0, len(vocabulary), rows)], mask=missing)
    pacsv.write_csv(pa.table(data), path)


def baseline(path: Path) -> float:
    """Seconds for the pyarrow/numpy statistics of the same file."""
    import numpy as np
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    start = time.perf_counter()
    table = pacsv.read_csv(path)
    summary = {}
    for name in table.column_names:
        column = table.column(name)
        if name.startswith("num_"):
            values = column.drop_null().to_numpy()
            summary[name] = (
                len(values),
                column.null_count,
                values.mean(),
                values.std(),
                values.min(),
                values.max(),
                int(np.count_nonzero(values == 0)),
            )
        else:
            counts = pc.value_counts(column.drop_null())
            top = sorted(counts.to_pylist(), key=lambda c: -c["counts"])[:10]
            summary[name] = (len(counts), column.null_count, top)
    return time.perf_counter() - start


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--beam", action="store_true", help="also time the Beam path")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "synthetic.csv")
        generate(csv, args.rows, args.columns)
        examples = Path(tmp, "examples")
        started = time.perf_counter()
        example_gen.run(str(csv), str(examples), splits="train:1")
        gen_seconds = time.perf_counter() - started
        statistics_gen.run(str(examples), str(Path(tmp, "warm")))  # import and warm TFDV first
        base = baseline(csv)
        started = time.perf_counter()
        result = statistics_gen.run(str(examples), str(Path(tmp, "memory")))
        memory = time.perf_counter() - started
        rows = [("pyarrow + numpy baseline", base), (f"StatisticsGen ({result.path['train']})", memory)]
        if args.beam:
            started = time.perf_counter()
            statistics_gen.run(str(examples), str(Path(tmp, "beam")), in_memory_max_mb=0)
            rows.append(("StatisticsGen (beam, DirectRunner multi-process)", time.perf_counter() - started))
    n = args.rows
    print(f"{n:,} rows x {args.columns} columns (ExampleGen wrote the Examples in {gen_seconds:.1f}s)")
    print(f"{'figure':50} {'seconds':>8} {'rows/s':>12} {'ratio':>6}")
    for label, seconds in rows:
        print(f"{label:50} {seconds:8.2f} {n / seconds:12,.0f} {base / seconds:6.3f}")
    ratio = base / memory
    for target, issue in ((0.25, "issue 4"), (0.5, "issue 8")):
        verdict = "pass" if ratio >= target else "falls short"
        print(f"target ({issue}): StatisticsGen >= {target}x baseline rows/s -> {ratio:.3f}x ({verdict})")


if __name__ == "__main__":
    main()
