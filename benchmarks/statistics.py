"""StatisticsGen throughput against a pyarrow/numpy baseline on the same synthetic CSV.

    python -m benchmarks.statistics [--rows 1000000] [--columns 20] [--repeat 3] [--beam]

The data comes from a seeded generator (half numeric, half categorical, 2% missing).
Each side is timed in this process, reading the same data:

* baseline: pyarrow reads the CSV, and per column computes count, missing, mean, std,
  min, max, zeros (numeric) or unique and top-10 values (categorical);
* StatisticsGen (in memory): its executor on the Examples ExampleGen wrote from that CSV,
  the path it picks for data that fits (``in_memory_max_mb``): the columnar copy read
  and TFDV's statistics, over as many processes as it picks (``PARALLEL_MIN_CELLS``,
  ``$KUBETFX_STATS_WORKERS``), and the same in one process;
* StatisticsGen (Beam, DirectRunner multi-process), with ``--beam``.

The baseline and the in-memory figures are timed in turn ``--repeat`` times and each
reported as its median (the machine may be busy with other work: in turn, both sides
see the same load). Rows per second are reported side by side, with the ratio to the
baseline, and the CPU seconds each took (threads and child processes included): when
the load average is above the CPU count, the wall times say more about the neighbours.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks import verdict as bench_verdict


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


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its children that ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    """Print the table."""
    import statistics

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="timings of each figure (median reported)")
    parser.add_argument("--beam", action="store_true", help="also time the Beam path (once)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    workers = statistics_gen.workers_from_env()
    processes = statistics_gen.processes_for(workers, args.rows, args.columns)
    plural = "es" if processes > 1 else ""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "synthetic.csv")
        generate(csv, args.rows, args.columns)
        examples = Path(tmp, "examples")
        started = time.perf_counter()
        example_gen.run(str(csv), str(examples), splits="train:1")
        gen_seconds = time.perf_counter() - started
        statistics_gen.run(str(examples), str(Path(tmp, "warm")))  # import and warm TFDV first

        def stats_seconds(out: str, **kwargs) -> float:
            started = time.perf_counter()
            paths.append(statistics_gen.run(str(examples), str(Path(tmp, out)), **kwargs).path["train"])
            return time.perf_counter() - started

        paths: list[str] = []
        figures = {
            "base": lambda: baseline(csv),
            "auto": lambda: stats_seconds("memory", workers=workers),
            "one": lambda: stats_seconds("one", workers=1),
        }
        times: dict[str, list[float]] = {k: [] for k in figures}
        cpu: dict[str, list[float]] = {k: [] for k in figures}
        for _ in range(args.repeat):
            for key, figure in figures.items():
                before = _cpu_seconds()
                times[key].append(figure())
                cpu[key].append(_cpu_seconds() - before)
        base, memory, one = (statistics.median(times[k]) for k in figures)
        rows = [
            ("pyarrow + numpy baseline", base, statistics.median(cpu["base"])),
            (
                f"StatisticsGen ({paths[0]}, {processes} process{plural})",
                memory,
                statistics.median(cpu["auto"]),
            ),
            (f"StatisticsGen ({paths[0]}, 1 process)", one, statistics.median(cpu["one"])),
        ]
        if args.beam:
            before = _cpu_seconds()
            seconds = stats_seconds("beam", in_memory_max_mb=0)
            beam_cpu = _cpu_seconds() - before  # Beam's worker processes ended: counted
            rows.append(("StatisticsGen (beam, DirectRunner multi-process)", seconds, beam_cpu))
    n = args.rows
    print(
        f"{n:,} rows x {args.columns} columns (ExampleGen wrote the Examples in {gen_seconds:.1f}s); "
        f"{len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"in memory up to in_memory_max_mb={statistics_gen.DEFAULT_IN_MEMORY_MAX_MB} MB a split (TFRecords); "
        f"columns over processes from {statistics_gen.PARALLEL_MIN_CELLS:,} cells "
        f"(${statistics_gen.WORKERS_ENV}={os.environ.get(statistics_gen.WORKERS_ENV, 'unset')})"
    )
    print(f"median of {args.repeat}, each side in turn:")
    print(f"{'figure':60} {'seconds':>8} {'rows/s':>12} {'ratio':>6} {'CPU s':>6}")
    for label, seconds, cpu_seconds in rows:
        print(f"{label:60} {seconds:8.2f} {n / seconds:12,.0f} {base / seconds:6.3f} {cpu_seconds:6.2f}")
    every = "; ".join(f"{k} {', '.join(f'{t:.2f}' for t in v)}" for k, v in times.items())
    print(f"all timings (s): {every}")
    ratio = base / memory
    for target in (0.25, 0.5):
        verdict = "pass" if ratio >= target else "falls short"
        print(f"target: StatisticsGen >= {target}x baseline rows/s -> {ratio:.3f}x ({verdict})")
    bench_verdict(
        f"StatisticsGen throughput, {n:,} x {args.columns} ({processes} process{plural})",
        n / memory,
        n / base,
        ratio,
        ">= 0.5x",
        ratio >= 0.5,
        "rows/s",
    )


if __name__ == "__main__":
    main()
