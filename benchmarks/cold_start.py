"""How much of a cold run waits for the warm worker's imports.

    python -m benchmarks.cold_start [--rows 15000] [--repeat 3] [--epochs N]

The reference pipeline on the TFX comparison's data (``benchmarks.tfx_cold``), cold (no
worker running, a private runtime folder) and warm (the worker left running, changed
data), interleaved; each on a fresh pipeline root and store. For each run: the runner's
time for each task (``running`` -> ``done``) beyond the task's own execution (the summary's
lineage time) is what starting it cost; on a cold run that includes waiting for the
worker's imports. The wait is that excess, cold minus warm (starting a task costs both);
the worker's own import time is from its log. Prints both, and their share of the cold run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.tfx_cold import _measured, _worker, write_csv


def main() -> None:
    """Run the repeats, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=15000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    from kubetfx.local import warm

    tmp = Path(tempfile.mkdtemp(prefix="kubetfx-cold-start-", dir="/tmp"))
    env = {**os.environ, warm.DIR_ENV: str(tmp / "warm"), warm.IDLE_ENV: "600"}
    env.pop(warm.ENABLE_ENV, None)
    cold, hot, loads = [], [], [os.getloadavg()[0]]
    try:
        for index in range(args.repeat):
            data = tmp / f"data-{index}" / "penguins.csv"
            changed = tmp / f"data-{index}-changed" / "penguins.csv"
            write_csv(data, args.rows, seed=index)
            write_csv(changed, args.rows, seed=1000 + index)
            cold.append(_measured(data, tmp / f"cold-{index}", args.epochs, env, cold=True))
            hot.append(_measured(changed, tmp / f"warm-{index}", args.epochs, env, cold=False))
            loads.append(os.getloadavg()[0])
            print(
                f"[{index + 1}/{args.repeat}] cold {cold[-1]['total']:.1f}s (tasks' excess"
                f" {cold[-1]['overhead']:.1f}s, worker imports {cold[-1]['worker_imports']}s);"
                f" warm {hot[-1]['total']:.1f}s (excess {hot[-1]['overhead']:.1f}s)",
                flush=True,
            )
    finally:
        _worker(["stop"], env)
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    total = med([r["total"] for r in cold])
    waited = max(0.0, med([r["overhead"] for r in cold]) - med([r["overhead"] for r in hot]))
    imports = med([r["worker_imports"] for r in cold if r.get("worker_imports")] or [float("nan")])
    print()
    print(
        f"{args.rows or 'penguins'} rows, {args.repeat} repeat(s), {os.cpu_count()} CPUs, load average "
        + ", ".join(f"{x:.1f}" for x in loads)
    )
    print(f"  cold run, process start to exit (median)     {total:6.1f} s")
    print(f"  warm run, process start to exit (median)     {med([r['total'] for r in hot]):6.1f} s")
    share = "of the cold run"
    print(f"  the worker's imports (median)                {imports:6.1f} s  ({imports / total:.0%} {share})")
    print(f"  tasks waiting for them (cold - warm excess)  {waited:6.1f} s  ({waited / total:.0%} {share})")


if __name__ == "__main__":
    main()
