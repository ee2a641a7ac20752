"""The Trainer's peak memory, its input held in memory against streamed, as rows grow.

    python -m benchmarks.trainer_stream [--sizes 100000,400000] [--epochs 1]

For each size, the synthetic binary data of ``benchmarks.early_stopping`` (14 numeric and 4
categorical features, seeded) goes through ExampleGen, StatisticsGen and SchemaGen once;
then the Trainer trains the built-in model in a fresh process twice: ``in memory`` (the
split read whole, ``stream_rows`` above the size) and ``streamed`` (``stream_rows=0``),
both ``--epochs`` epochs without early stopping at the batch size chosen for the data.
Each process reports its own peak resident memory (``VmHWM``), which includes
TensorFlow's own (about 0.4 GB before any data). Target: the streamed run's peak grows by
at most 1.5x from the smallest size to the largest, while the rows grow 4x or more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import verdict


def _peak_mb() -> float:
    """This process's peak resident memory since it started its program (VmHWM; unlike
    ru_maxrss, which a child inherits from the parent it was forked from)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(examples: str, schema: str, stats: str, model: str, hyperparameters: str) -> None:
    from kubetfx.components.trainer import executor

    began = time.perf_counter()
    result = executor.run(
        examples, schema, stats, model, label_key="label", hyperparameters=json.loads(hyperparameters)
    )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - began,
                "peak_mb": _peak_mb(),
                "val_auc": result.metrics["val_auc"],
                "train_rows": result.train_examples,
            }
        )
    )


def main() -> None:
    """Prepare each size, train twice in child processes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,400000")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from benchmarks.early_stopping import _write_synthetic
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    sizes = [int(s) for s in args.sizes.split(",")]
    found: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="kubetfx-stream-") as tmp:
        for rows in sizes:
            root = Path(tmp, str(rows))
            root.mkdir()
            _write_synthetic(root / "data.csv", rows=rows)
            examples, stats, schema = (str(root / n) for n in ("examples", "statistics", "schema"))
            example_gen.run(str(root / "data.csv"), examples)
            statistics_gen.run(examples, stats)
            schema_gen.run(stats, schema, label_key="label")
            found[rows] = {}
            for name, stream_rows in (("in memory", rows * 10), ("streamed", 0)):
                hp = {"epochs": args.epochs, "patience": 0, "stream_rows": stream_rows}
                command = [
                    sys.executable,
                    "-m",
                    "benchmarks.trainer_stream",
                    "--child",
                    examples,
                    schema,
                    stats,
                    str(root / name.replace(" ", "_")),
                    json.dumps(hp),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                found[rows][name] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{rows} {name}: {found[rows][name]}", flush=True)
    print(f"\n{'rows':>10} {'input':10} {'train rows':>10} {'seconds':>8} {'peak MB':>8} {'AUC':>7}")
    for rows, runs in found.items():
        for name, r in runs.items():
            print(
                f"{rows:>10,} {name:10} {r['train_rows']:>10,} {r['seconds']:8.1f} {r['peak_mb']:8.0f} "
                f"{r['val_auc']:7.4f}"
            )
    small, large = sizes[0], sizes[-1]
    growth = found[large]["streamed"]["peak_mb"] / found[small]["streamed"]["peak_mb"]
    verdict(
        f"trainer streamed: peak memory at {large:,} rows vs {small:,}",
        found[large]["streamed"]["peak_mb"],
        found[small]["streamed"]["peak_mb"],
        growth,
        "<= 1.5x",
        growth <= 1.5,
        unit="MB",
    )


if __name__ == "__main__":
    main()
