"""How the data tasks grow with the data: 1M, 3M and 10M generated rows of 20 columns.

    python -m benchmarks.growth [--sizes 1000000,3000000,10000000] [--batch-mb 32]
    python -m benchmarks.growth --pipeline [--sizes 10000,100000,1000000] [--epochs 2]

For each size a CSV of that many rows is generated (seeded: 8 decimal columns, 6 integer
columns, 5 text columns of 2 to 1,000 distinct values, some cells empty, and a 3-class
label), with a serving sample of a tenth of the rows. Then each data task runs on it in
a process of its own, as a pipeline step runs: ExampleGen (CSV -> split TFRecords and
columnar copy), StatisticsGen (TFDV statistics of every split), SchemaGen, and the
ExampleValidator (anomalies, and skew against the serving sample, read in full).
Reported per task and size: seconds of work (imports done first, as in a pipeline's warm
worker), microseconds per row, and peak memory (imports included): the
high-water RSS of the task's process, or of its largest child (StatisticsGen computes
column groups in forked children), from ``getrusage``.

Targets, per task: peak memory at the largest size under 4 GB and at most 1.5x its value
at the smallest; time per row at the largest size at most 1.5x that at the smallest.

``--pipeline`` runs the whole reference pipeline (``kubetfx run``, Trainer included) per
size instead, as before: wall time and per-task seconds and peak RSS from the runner.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import verdict

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
JITTERED = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
LIMIT_MB = 4 * 1024
PIPELINE_LIMIT_MB = 8 * 1024
GROWTH = 1.5
TASKS = ("example-gen", "statistics-gen", "schema-gen", "example-validator")
CHUNK_ROWS = 500_000


# ---------------------------------------------------------------------- data


def make_table_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` generated rows of 20 columns, written chunk by chunk (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    words = np.array([f"w{k:04d}" for k in range(1000)])
    writer = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            label = rng.integers(0, 3, n)
            columns: dict[str, Any] = {}
            for k in range(8):
                values = np.round(rng.normal(10 * k + label, 1 + k, n), 3)
                columns[f"x{k}"] = pa.array(values, mask=rng.random(n) < 0.01)
            for k in range(6):
                columns[f"n{k}"] = pa.array(rng.integers(0, 10 ** (k + 1), n) + label)
            columns["color"] = pa.array(
                np.array(["red", "green", "blue"])[(label + rng.integers(0, 2, n)) % 3]
            )
            columns["size"] = pa.array(np.array(["S", "M", "L", "XL"])[rng.integers(0, 4, n)])
            columns["code"] = pa.array(words[rng.integers(0, 50, n)], mask=rng.random(n) < 0.05)
            columns["word"] = pa.array(words[rng.zipf(1.3, n) % 1000])
            columns["flag"] = pa.array(np.array(["yes", "no"])[rng.integers(0, 2, n)])
            columns["label"] = pa.array(np.array(["a", "b", "c"])[label])
            table = pa.table(columns)
            if writer is None:
                writer = pacsv.CSVWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


# ---------------------------------------------------------------------- tasks


def run_task(task: str, root: Path) -> dict[str, float]:
    """One data task on ``root``'s data, in this process (the ``--task`` entry point)."""
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.example_validator import executor as example_validator
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    if task != "example-gen":
        import tensorflow_data_validation  # noqa: F401 - imported before the clock starts, as in a warm worker
    began = time.perf_counter()  # the work, not the imports (a pipeline's warm worker has them)
    if task == "example-gen":
        example_gen.run(str(root / "data.csv"), str(root / "examples"))
    elif task == "statistics-gen":
        statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    elif task == "schema-gen":
        schema_gen.run(str(root / "statistics"), str(root / "schema"), label_key="label")
    elif task == "example-validator":
        example_validator.run(
            str(root / "statistics"),
            str(root / "schema"),
            str(root / "anomalies"),
            serving_data_uri=str(root / "serving.csv"),
        )
    else:
        raise SystemExit(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    seconds = time.perf_counter() - began
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "rss_mb": max(own, children), "own_rss_mb": own}


def task_process(task: str, root: Path, batch_mb: float | None) -> dict[str, float]:
    """``run_task`` in a new process (a step's own container, here a process)."""
    env = dict(os.environ)
    if batch_mb is not None:
        env["KUBETFX_BATCH_MB"] = str(batch_mb)
    command = [sys.executable, "-m", "benchmarks.growth", "--task", task, "--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{task} failed on {root}:\n{(done.stdout + done.stderr)[-3000:]}")
    return json.loads(lines[-1])


def data_tasks(sizes: list[int], batch_mb: float | None, keep: str) -> None:
    """Run every data task at every size; print the table and the verdicts."""
    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kubetfx-bench-growth-", dir=keep or None) as tmp:
        for rows in sizes:
            root = Path(tmp, str(rows))
            root.mkdir()
            began = time.perf_counter()
            make_table_csv(root / "data.csv", rows)
            make_table_csv(root / "serving.csv", max(rows // 10, 1000), seed=1)
            size_mb = (root / "data.csv").stat().st_size / 2**20
            print(
                f"{rows:>11,} rows: {size_mb:,.0f} MB of CSV in {time.perf_counter() - began:.0f}s",
                flush=True,
            )
            results[rows] = {}
            for task in TASKS:
                results[rows][task] = r = task_process(task, root, batch_mb)
                print(f"{'':>13}{task:<18} {r['seconds']:>8.1f}s {r['rss_mb']:>8,.0f} MB", flush=True)
            shutil.rmtree(root)
    print(
        f"\nData tasks by size ({os.cpu_count()} CPUs, batches of "
        f"{batch_mb or os.environ.get('KUBETFX_BATCH_MB') or 32} MB; each task in its own process)"
    )
    print(f"{'task':<19}" + "".join(f"{f'{n:,} s':>14}{'us/row':>8}{'MB':>7}" for n in sizes))
    for task in TASKS:
        cells = "".join(
            f"{results[n][task]['seconds']:>14.1f}{results[n][task]['seconds'] / n * 1e6:>8.2f}"
            f"{results[n][task]['rss_mb']:>7,.0f}"
            for n in sizes
        )
        print(f"{task:<19}{cells}")
    small, large = sizes[0], sizes[-1]
    for task in TASKS:
        a, b = results[small][task], results[large][task]
        per_row = (b["seconds"] / large) / (a["seconds"] / small)
        memory = b["rss_mb"] / a["rss_mb"]
        print(
            f"{task}: at {large:,} rows {b['rss_mb']:,.0f} MB peak ({memory:.2f}x of {small:,} rows), "
            f"time per row {per_row:.2f}x"
        )
        verdict(
            f"growth: {task} peak RSS at {large:,} rows",
            b["rss_mb"],
            None,
            None,
            f"< {LIMIT_MB} MB",
            b["rss_mb"] < LIMIT_MB,
            "MB",
        )
        verdict(
            f"growth: {task} peak RSS, {large:,} vs {small:,} rows",
            b["rss_mb"],
            a["rss_mb"],
            memory,
            f"<= {GROWTH}x",
            memory <= GROWTH,
            "MB",
        )
        verdict(
            f"growth: {task} time per row, {large:,} vs {small:,} rows",
            b["seconds"] / large * 1e6,
            a["seconds"] / small * 1e6,
            per_row,
            f"<= {GROWTH}x",
            per_row <= GROWTH,
            "us",
        )


# ---------------------------------------------------------------------- the whole pipeline


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


def pipeline_growth(sizes: list[int], epochs: int) -> None:
    """The whole reference pipeline per size (``--pipeline``); print the table."""
    args = argparse.Namespace(epochs=epochs)
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
    print(
        f"largest task peak RSS at {sizes[-1]:,} rows: {peak:,.0f} MB "
        f"(target: fits in {PIPELINE_LIMIT_MB:,} MB)"
    )
    verdict(
        f"growth: peak task RSS at {sizes[-1]:,} rows",
        peak,
        None,
        None,
        f"<= {PIPELINE_LIMIT_MB} MB",
        peak <= PIPELINE_LIMIT_MB,
        "MB",
    )


def main() -> None:
    """Run each size and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="")
    parser.add_argument("--batch-mb", type=float, default=None, help="input per batch (KUBETFX_BATCH_MB)")
    parser.add_argument("--pipeline", action="store_true", help="the whole reference pipeline per size")
    parser.add_argument("--epochs", type=int, default=2, help="with --pipeline: the Trainer's epochs")
    parser.add_argument("--tmp", default="", help="where the generated data goes (default: the system's)")
    parser.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        print(json.dumps(run_task(args.task, Path(args.root))), flush=True)
        return
    default = "10000,100000,1000000" if args.pipeline else "1000000,3000000,10000000"
    sizes = [int(s) for s in (args.sizes or default).split(",")]
    if args.pipeline:
        pipeline_growth(sizes, args.epochs)
    else:
        data_tasks(sizes, args.batch_mb, args.tmp)


if __name__ == "__main__":
    main()
