"""The warm worker end to end: the reference pipeline cold, with the worker, and bare.

    python -m benchmarks.warm [--epochs 5] [--keep]

Runs ``pipelines/training/pipeline.yaml`` (``--param epochs=5``) through the CLI, as a
user does, each run on its own copy of the penguins CSV with a few values changed (so
nothing is cached), all against one metadata store (so later runs evaluate against the
model the earlier ones pushed, as when a data scientist iterates):

1. ``no worker``: ``kubetfx run --no-warm``, a fresh process per task;
2. ``worker started by the run``: the runner starts the worker (in a fresh runtime
   folder) when the run begins; the tasks that need no heavy library run in their own
   processes while it imports, the first that needs it waits for the rest of its imports;
3. ``warm worker``: the worker is already running (the case a data scientist iterating is in).

Then ``bare work``: the same library calls made directly in one process, timed after
its imports: each component's own function (the body the task runs, executors and
reports included, with kfp artifact objects) called in pipeline order, with the data of
run 3 and the same store for the lineage reads (baseline model, drift baseline).

Per-task overhead, for the runs: from the runner's ``running`` line (stamped when the
benchmark reads it) to the execution's ``start_time`` in ML Metadata (written by the task
wrapper just before the executor starts), and from the execution's ``end_time`` to the
runner's ``done`` line. Shared machines are noisy: compare within one invocation.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import verdict

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PIPELINE_NAME = "kubetfx-training"
TARGET = 1.2  # the warm run's time at most this many times the bare work's


def _pipeline_file() -> str:
    import kubetfx.pipelines.training as training

    return str(Path(training.__file__).with_name("pipeline.yaml"))


def _changed_copy(path: Path, version: int) -> None:
    """The penguins CSV with a few measurements nudged: new content, same distribution."""
    from kubetfx.fingerprint import local_path

    source = local_path(PENGUINS)
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    rng = random.Random(version)
    header, body = rows[0], rows[1:]
    column = header.index("bill_length_mm")
    changed = 0
    while changed < 5:
        row = body[rng.randrange(len(body))]
        if row[column] != "NA":
            row[column] = f"{float(row[column]) + rng.choice((-0.1, 0.1)):.1f}"
            changed += 1
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *body])


def _run(args: list[str], env: dict[str, str]) -> dict:
    """``kubetfx run ...``; every output line stamped with the wall-clock time it arrived."""
    began = time.time()
    proc = subprocess.Popen(
        [KUBETFX, "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.time(), line.rstrip("\n")))
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - began
    text = "\n".join(line for _, line in lines)
    match = re.search(r"^Run (\S+) (\w+) in ([\d.]+)s", text, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"kubetfx run failed ({proc.returncode}):\n{text[-3000:]}")
    running, done = {}, {}
    for stamp, line in lines:
        found = re.match(r"^  (\S+): (running|done in)", line)
        if found:
            (running if found.group(2) == "running" else done)[found.group(1)] = stamp
    return {
        "wall": wall,
        "run_id": match.group(1),
        "state": match.group(2),
        "runner_seconds": float(match.group(3)),
        "running": running,
        "done": done,
        "text": text,
        # The CLI and every process it waited for (plain tasks; the shim's clients).
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def _worker_cpu(log: Path, offset: int) -> dict[str, float]:
    """CPU seconds of the tasks the worker ran since ``offset`` of its log, by task."""
    if not log.exists():
        return {}
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"task (\S+): process \d+ ended .* cpu ([\d.]+)s", text)
    }


def _task_times(store_url: str, result: dict) -> dict[str, dict]:
    """Per task: seconds as the runner saw them, and the overhead around the executor."""
    from kubetfx.lineage.record import props
    from kubetfx.lineage.store import connect

    store = connect(store_url)
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", result["run_id"])
    tasks = {}
    for execution in store.mlmd.get_executions_by_context(ctx.id):
        p = props(execution)
        name = p.get("task_name", "")
        if name not in result["running"] or name not in result["done"] or "end_time" not in p:
            continue
        tasks[name] = {
            "seconds": result["done"][name] - result["running"][name],
            "executor": p["end_time"] - p["start_time"],
            "front": p["start_time"] - result["running"][name],
            "back": result["done"][name] - p["end_time"],
            "order": result["running"][name],
        }
    return dict(sorted(tasks.items(), key=lambda kv: kv[1]["order"]))


# ---------------------------------------------------------------------- bare work


def _bare(data: str, root: str, epochs: int) -> None:
    """One process: import everything, then call each component's function in pipeline order."""
    import importlib

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics, Model

    from kubetfx.local.warm import PRELOAD

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from kubetfx.components import (
        evaluator,
        example_gen,
        example_validator,
        model_resolver,
        pusher,
        schema_gen,
        serving_check,
        statistics_gen,
        trainer,
    )
    from kubetfx.pipelines.training.pipeline import training

    defaults = {k: v.default for k, v in inspect.signature(training.pipeline_func).parameters.items()}
    p = {**defaults, "epochs": epochs, "input_uri": data}
    for module in ("example_gen", "statistics_gen", "schema_gen", "example_validator", "trainer"):
        importlib.import_module(f"kubetfx.components.{module}.executor")
    importlib.import_module("kubetfx.components.evaluator.executor")
    importlib.import_module("kubetfx.components.serving_check.executor")
    importlib.import_module("kubetfx.components.pusher.executor")
    importlib.import_module("kubetfx.components.model_card.executor")

    def out(kind, name):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return kind(name=name, uri=path, metadata={})

    import resource

    times: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def step(name, fn, **kwargs):
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        result = getattr(fn, "python_func", fn)(**kwargs)  # a component's function, or a plain one
        times[name] = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu[name] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return result

    examples = out(Dataset, "examples")
    step(
        "example-gen",
        example_gen,
        input_uri=p["input_uri"],
        examples=examples,
        splits=p["splits"],
        partition_feature=p["partition_feature"],
    )
    stats = out(Artifact, "statistics")
    step(
        "statistics-gen", statistics_gen, examples=examples, statistics=stats, report=out(HTML, "stats.html")
    )
    schema = out(Artifact, "schema")
    step(
        "schema-gen",
        schema_gen,
        statistics=stats,
        schema=schema,
        report=out(HTML, "schema.html"),
        schema_file=p["schema_file"],
        label_key=p["label_key"],
    )
    step(
        "example-validator",
        example_validator,
        statistics=stats,
        schema=schema,
        anomalies=out(Artifact, "anomalies"),
        report=out(HTML, "anomalies.html"),
        metrics=out(Metrics, "validation_metrics"),
        fail_on_anomalies=p["fail_on_anomalies"],
        serving_data_uri=p["serving_data_uri"],
    )
    model = out(Model, "model")
    step(
        "trainer",
        trainer,
        examples=examples,
        schema=schema,
        statistics=stats,
        model=model,
        metrics=out(Metrics, "train_metrics"),
        report=out(HTML, "train.html"),
        label_key=p["label_key"],
        epochs=p["epochs"],
        learning_rate=p["learning_rate"],
        module_file=p["module_file"],
        exclude_features=p["exclude_features"],
    )
    baseline = step("model-resolver", model_resolver, model_name=p["model_name"], candidate=model)
    blessing = out(Artifact, "blessing")
    evaluated = step(
        "evaluator",
        evaluator,
        examples=examples,
        model=model,
        evaluation=out(Artifact, "evaluation"),
        blessing=blessing,
        report=out(HTML, "evaluation.html"),
        metrics=out(Metrics, "eval_metrics"),
        classification_metrics=out(ClassificationMetrics, "confusion"),
        label_key=p["label_key"],
        model_name=p["model_name"],
        slice_features=p["slice_features"],
        feature_crosses=p["feature_crosses"],
        min_accuracy=p["min_accuracy"],
        max_accuracy_drop=p["max_accuracy_drop"],
        max_fairness_gap=p["max_fairness_gap"],
        min_slice_size=p["min_slice_size"],
        baseline_model_uri=baseline.model_uri,
        baseline_model_id=baseline.model_id,
    )
    check = out(Artifact, "serving_check")
    step(
        "serving-check",
        serving_check,
        model=model,
        examples=examples,
        check=check,
        model_name=p["model_name"],
        load_requests=p["serving_load_requests"],
        serving_server=p["serving_server"],
    )
    if evaluated.blessed:
        pushed = out(Artifact, "pushed_model")
        step(
            "condition-1/pusher",
            pusher,
            model=model,
            blessing=blessing,
            serving_check=check,
            pushed_model=pushed,
            report=out(HTML, "push.html"),
            model_name=p["model_name"],
            push_destination=p["push_destination"],
            latency_slo_p95_ms=p["latency_slo_p95_ms"],
        )
        # The card from the pushed model's own metadata: the bare work records no lineage
        # to build it from (the pipeline's task reads lineage; a few ML Metadata queries).
        from kubetfx.components.model_card import executor as card_executor
        from kubetfx.reports import write_report

        card_dir = os.path.join(root, "model_card")
        os.makedirs(card_dir, exist_ok=True)
        card_report = out(HTML, "card.html")

        def card() -> None:
            made = card_executor.run(None, pushed.uri, dict(pushed.metadata), card_dir)
            write_report(card_report, made.html)

        step("condition-1/model-card", card)
    print(json.dumps({"times": times, "cpu": cpu, "blessed": bool(evaluated.blessed)}))


# ---------------------------------------------------------------------- report


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _overheads(tasks: dict[str, dict], skip_first: bool) -> tuple[list[float], list[float]]:
    items = list(tasks.values())[1 if skip_first else 0 :]
    return [t["front"] for t in items], [t["back"] for t in items]


def _bare_work(data: str, root: Path, epochs: int, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.warm", "--epochs", str(epochs), "--bare", data, str(root)],
        env={**env, "KUBETFX_PIPELINE_NAME": PIPELINE_NAME},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bare work failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the pipeline runs and the bare work; print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--bare", nargs=2, metavar=("DATA", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        _bare(args.bare[0], args.bare[1], args.epochs)
        return

    from kubetfx.local import warm

    tmp = Path(tempfile.mkdtemp(prefix="kubetfx-warm-bench-", dir="/tmp"))
    store = f"sqlite:///{tmp}/mlmd.sqlite"
    env = {
        **os.environ,
        "KUBETFX_METADATA": store,
        "KUBETFX_PIPELINE_ROOT": str(tmp / "root"),
        "KUBETFX_PUSH_ROOT": str(tmp / "serving"),
        warm.DIR_ENV: str(tmp / "w"),  # a fresh runtime folder: the second run really starts it
        warm.IDLE_ENV: "300",
    }
    env.pop(warm.ENABLE_ENV, None)
    pipeline = _pipeline_file()
    # Two rounds of (warm run, bare work) on the same data each, interleaved, so that a
    # load spike from a neighbour hits one pair rather than one side.
    plan = [
        ("no worker", ["--no-warm"]),
        ("worker started by the run", []),
        ("warm worker", []),
        ("warm worker (again)", []),
    ]
    runs: dict[str, dict] = {}
    bares: list[dict] = []
    for version, (label, extra) in enumerate(plan, start=1):
        data = tmp / f"penguins-{version}.csv"
        _changed_copy(data, version)
        print(f"running: {label} ...", flush=True)
        log = next(iter((tmp / "w").glob("*/*.log")), None) if (tmp / "w").exists() else None
        offset = log.stat().st_size if log else 0
        result = _run(
            [pipeline, "--param", f"epochs={args.epochs}", "--param", f"input_uri={data}", *extra],
            {**env, warm.ENABLE_ENV: "0" if extra else "1"},
        )
        result["tasks"] = _task_times(store, result)
        log = next(iter((tmp / "w").glob("*/*.log")), None) if (tmp / "w").exists() else None
        worker_cpu = _worker_cpu(log, offset if log and offset <= log.stat().st_size else 0) if log else {}
        result["cpu"] += sum(worker_cpu.values())
        runs[label] = result
        if label.startswith("warm worker"):
            print("running: bare work on the same data ...", flush=True)
            bares.append(_bare_work(str(data), tmp / f"bare-{version}", args.epochs, env))
    workers = warm.status(str(tmp / "w"))
    warm.stop(str(tmp / "w"))

    labels = list(runs)
    names: list[str] = []
    for label in labels:
        names += [n for n in runs[label]["tasks"] if n not in names]
    bare_totals = [sum(b["times"].values()) for b in bares]
    best = min(range(len(bares)), key=lambda i: bare_totals[i])
    bare, bare_total = bares[best]["times"], bare_totals[best]
    width = max(len(label) for label in labels) + 2
    print()
    print(
        f"kubetfx-training, epochs={args.epochs}, each run on changed data (nothing cached); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print()
    print("seconds per task (runner's running -> done; bare work: the function call, best of two)")
    print(f"{'task':20} " + " ".join(f"{label:>{width}}" for label in labels) + f" {'bare work':>10}")
    for name in names:
        cells = [_fmt(runs[label]["tasks"].get(name, {}).get("seconds")) for label in labels]
        print(f"{name:20} " + " ".join(f"{c:>{width}}" for c in cells) + f" {_fmt(bare.get(name)):>10}")
    sums = {label: sum(t["seconds"] for t in runs[label]["tasks"].values()) for label in labels}
    print(
        f"{'sum of tasks':20} "
        + " ".join(f"{sums[label]:>{width}.2f}" for label in labels)
        + f" {bare_total:>10.2f}"
    )
    print(
        f"{'runner (Run ... in)':20} "
        + " ".join(f"{runs[label]['runner_seconds']:>{width}.2f}" for label in labels)
    )
    print(f"{'command wall clock':20} " + " ".join(f"{runs[label]['wall']:>{width}.2f}" for label in labels))
    bare_cpu = sum(bares[best]["cpu"].values())
    print(
        f"{'CPU seconds':20} "
        + " ".join(f"{runs[label]['cpu']:>{width}.2f}" for label in labels)
        + f" {bare_cpu:>10.2f}"
    )
    print()
    print(
        "per-task overhead, seconds: running -> executor start / executor end -> done "
        "(median, max; runs with the worker skip their first task)"
    )
    for label in labels:
        tasks = runs[label]["tasks"]
        front, back = _overheads(tasks, skip_first=label != "no worker")
        print(
            f"  {label:{width}} front {statistics.median(front):.2f} / {max(front):.2f}   "
            f"back {statistics.median(back):.2f} / {max(back):.2f}   "
            f"(first task: front {next(iter(tasks.values()))['front']:.2f})"
        )
    print("  per task, warm runs (front + back):")
    for name in names:
        cells = [
            f"{t['front']:.2f} + {t['back']:.2f}"
            for label in labels
            if label.startswith("warm worker") and (t := runs[label]["tasks"].get(name))
        ]
        print(f"    {name:20} " + "   ".join(cells))
    print()
    print(f"ratios (targets: warm run <= {TARGET} x bare work; per-task overhead after the first task < 1 s)")
    for index, label in enumerate(label for label in labels if label.startswith("warm worker")):
        run = runs[label]
        print(
            f"  {label:{width}} runner / its bare work {run['runner_seconds'] / bare_totals[index]:.2f}, "
            f"command wall / its bare work {run['wall'] / bare_totals[index]:.2f}, "
            f"sum of tasks / its bare work {sums[label] / bare_totals[index]:.2f}"
        )
    fastest = min(
        (label for label in labels if label.startswith("warm worker")),
        key=lambda x: runs[x]["runner_seconds"],
    )
    print(f"  best warm runner / best bare work   {runs[fastest]['runner_seconds'] / bare_total:.2f}")
    speedup = runs["no worker"]["runner_seconds"] / runs[fastest]["runner_seconds"]
    print(f"  no worker / best warm (runner)      {speedup:.2f}")
    best = runs[fastest]["runner_seconds"]
    verdict(
        "warm run vs bare work (same calls, one process)",
        best,
        bare_total,
        best / bare_total,
        f"<= {TARGET}x",
        best / bare_total <= TARGET,
    )
    overheads = [
        front + back
        for label in labels
        if label.startswith("warm worker")
        for front, back in zip(*_overheads(runs[label]["tasks"], skip_first=True), strict=True)
    ]
    worst = max(overheads, default=0.0)
    verdict("warm: per-task overhead after the first task (max)", worst, None, None, "< 1 s", worst < 1.0)
    for info in workers:
        if info.get("alive"):
            print(
                f"worker {info['pid']}: imports {info.get('import_seconds')}s, RSS {info.get('rss_mb')} MB, "
                f"served {info.get('served')} tasks"
            )
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
