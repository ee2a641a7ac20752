"""How the reference pipeline grows with the data: 10k, 100k and 1M rows.

    python -m benchmarks.growth [--sizes 10000,100000,1000000] [--epochs 2]

For each size, a CSV of that many rows is made by resampling the penguins rows with a
seeded generator (measurements jittered, so rows differ), and the reference pipeline
(``pipelines/training/pipeline.yaml``) runs on it through the CLI, as a user runs it,
with its own metadata store and pipeline root (nothing cached, no baseline), the warm
worker already started by a small run before. Reported per size: wall time, time per
1,000 rows, and per task its seconds (the runner's ``done in``) and peak memory (the
task process's peak RSS, from its state file; a task forked from the warm worker counts
the worker's pages it maps, as a container's memory would).

Targets: cost grows about linearly (time per row at the largest size
at most 1.5x that of the middle one) and the largest run's tasks each fit in 8 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import verdict

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
JITTERED = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
LIMIT_MB = 8 * 1024


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` penguins rows resampled, numeric measurements jittered by about 2%
    (kept within each column's observed range)."""
    import numpy as np

    from kubetfx.fingerprint import local_path

    with open(local_path(PENGUINS), newline="") as f:
        source = list(csv.DictReader(f))
    header = list(source[0])
    # Jittered values stay within each column's observed range: the curated schema bounds
    # it, and the pipeline would (rightly) stop on an out-of-range value.
    bounds = {
        name: (min(values), max(values))
        for name in JITTERED
        if (values := [float(r[name]) for r in source if r[name] not in ("NA", "")])
    }
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(source), size=rows)
    noise = rng.normal(1.0, 0.02, size=(rows, len(JITTERED)))
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for i, index in enumerate(picks):
            row = dict(source[index])
            for j, name in enumerate(JITTERED):
                if row[name] not in ("NA", ""):
                    low, high = bounds[name]
                    value = min(max(float(row[name]) * noise[i, j], low), high)
                    row[name] = f"{value:.1f}" if "." in row[name] else str(round(value))
            writer.writerow([row[k] for k in header])


def run_pipeline(data: Path, root: Path, epochs: int) -> dict:
    """One ``kubetfx run`` of the reference pipeline on ``data``; per-task seconds and RSS."""
    from kubetfx.pipelines import training

    pipeline = Path(training.__file__).with_name("pipeline.yaml")
    env = {**os.environ, "KUBETFX_PUSH_ROOT": str(root / "serving")}
    command = [
        KUBETFX,
        "run",
        str(pipeline),
        "--metadata",
        f"sqlite:///{root / 'metadata.sqlite'}",
        "--pipeline-root",
        str(root / "pipeline_root"),
        "--param",
        f"input_uri={data}",
        "--param",
        f"epochs={epochs}",
    ]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"kubetfx run failed on {data}:\n{(done.stdout + done.stderr)[-3000:]}")
    seconds = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^  (\S+): done in ([\d.]+)s", done.stdout, re.M)
    }
    rss = {}
    for state_file in (root / "pipeline_root").rglob(".kubetfx/state.json"):
        state = json.loads(state_file.read_text())
        task_dir = state_file.parent.parent.as_posix()
        for task in seconds:  # a task's folder ends with its qualified name (condition-1/pusher)
            if "peak_rss_mb" in state and task_dir.endswith("/" + task):
                rss[task] = float(state["peak_rss_mb"])
    return {"wall": wall, "seconds": seconds, "rss": rss}


def main() -> None:
    """Run each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="kubetfx-bench-growth-") as tmp:
        warmup = Path(tmp, "warmup")
        warmup.mkdir()
        make_csv(warmup / "data.csv", 1000, seed=99)
        run_pipeline(warmup / "data.csv", warmup, args.epochs)  # starts the warm worker
        for rows in sizes:
            root = Path(tmp, str(rows))
            root.mkdir()
            make_csv(root / "data.csv", rows)
            results[rows] = run_pipeline(root / "data.csv", root, args.epochs)
            print(f"{rows:>9,} rows: {results[rows]['wall']:.1f}s", flush=True)
    tasks = list(results[sizes[-1]]["seconds"])
    print(f"\nReference pipeline by data size ({os.cpu_count()} CPUs, epochs={args.epochs}, warm worker)")
    print(f"{'rows':>10}{'wall s':>9}{'s / 1k rows':>13}{'max RSS MB':>12}")
    for rows, r in results.items():
        print(
            f"{rows:>10,}{r['wall']:>9.1f}{r['wall'] / rows * 1000:>13.3f}"
            f"{max(r['rss'].values(), default=0):>12,.0f}"
        )
    print(f"\n{'task':<22}" + "".join(f"{f'{n:,} s':>12}{'RSS MB':>9}" for n in sizes))
    for task in tasks:
        nan = float("nan")
        cells = "".join(
            f"{results[n]['seconds'].get(task, nan):>12.1f}{results[n]['rss'].get(task, nan):>9,.0f}"
            for n in sizes
        )
        print(f"{task:<22}{cells}")
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        per_row = {n: results[n]["wall"] / n for n in (small, large)}
        growth = per_row[large] / per_row[small]
        print(f"\ntime per row at {large:,} / at {small:,}: {growth:.2f} (target <= 1.5: about linear)")
        verdict(
            f"growth: time per row, {large:,} vs {small:,} rows",
            growth,
            None,
            growth,
            "<= 1.5",
            growth <= 1.5,
            "x",
        )
    peak = max(results[sizes[-1]]["rss"].values(), default=0.0)
    print(f"largest task peak RSS at {sizes[-1]:,} rows: {peak:,.0f} MB (target: fits in {LIMIT_MB:,} MB)")
    verdict(
        f"growth: peak task RSS at {sizes[-1]:,} rows",
        peak,
        None,
        None,
        f"<= {LIMIT_MB} MB",
        peak <= LIMIT_MB,
        "MB",
    )


if __name__ == "__main__":
    main()
