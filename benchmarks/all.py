"""Every benchmark, then one table: figure, baseline, ratio, target, pass / falls short.

    python -m benchmarks.all [--quick] [--only NAME,...] [--log FILE]

Runs each benchmark script in its own process (their full output goes to ``--log``,
default ``bench.log``), gathers the ``BENCH-RESULT`` lines they print, and prints the
table. ``--quick`` uses smaller sizes (a smoke run: its figures are not the targets'). The
TFX comparison needs its benchmark-only environment (``scripts/tfx-bench-env.sh``); it is
reported as not run when that environment is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import MARK

# (name, module, arguments, quick arguments)
BENCHMARKS: list[tuple[str, str, list[str], list[str]]] = [
    ("authoring", "benchmarks.authoring", [], ["--repeat", "3"]),
    ("statistics", "benchmarks.statistics", [], ["--rows", "100000"]),
    ("evaluator", "benchmarks.evaluator", [], ["--rows", "20000"]),
    ("lineage", "benchmarks.lineage", [], ["--executions", "600"]),
    ("warm", "benchmarks.warm", [], ["--epochs", "2"]),
    ("tfx", "benchmarks.tfx_cold", [], ["--repeat", "1"]),
    ("tfx-penguins", "benchmarks.tfx_cold", ["--rows", "0"], ["--rows", "0", "--repeat", "1"]),
    # The same with the reference pipeline's defaults: the serving check in KServe's server
    # under load, work TFX's pipeline does not do (its ratio is not the quarter target's).
    (
        "tfx-kserve-check",
        "benchmarks.tfx_cold",
        ["--serving-check", "auto", "--repeat", "1"],
        ["--serving-check", "auto", "--repeat", "1"],
    ),
    ("growth", "benchmarks.growth", [], ["--sizes", "10000,100000"]),
    ("early_stopping", "benchmarks.early_stopping", [], ["--datasets", "penguins,seattle-weather"]),
]


def _machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.platform()}, Python {platform.python_version()}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.node()}: {os.cpu_count()} CPUs{memory}, {system}; load average now {load}"


def main() -> None:
    """Run the benchmarks, print the table; exit 1 if a benchmark failed to run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", default="", help="comma-separated names: " + ",".join(b[0] for b in BENCHMARKS)
    )
    parser.add_argument("--log", default="bench.log")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    results: list[dict] = []
    failed: list[str] = []
    with open(args.log, "w") as log:
        log.write(f"{_machine()}\n")  # the load when it began: the machine may be shared
        for name, module, full, quick in BENCHMARKS:
            if only and name not in only:
                continue
            command = [sys.executable, "-m", module, *(quick if args.quick else full)]
            print(f"running {name}: {' '.join(command[1:])}", flush=True)
            log.write(f"\n===== {name}: {' '.join(command)}\n")
            log.flush()
            began = time.perf_counter()
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            found = 0
            for line in proc.stdout:
                log.write(line)
                if line.startswith(MARK):
                    results.append({"benchmark": name, **json.loads(line[len(MARK) :])})
                    found += 1
            code = proc.wait()
            seconds = time.perf_counter() - began
            log.flush()
            if code != 0 or not found:
                failed.append(name)
                print(
                    f"  {name}: did not finish (exit {code}) after {seconds:.0f}s; see {args.log}", flush=True
                )
            else:
                print(f"  {name}: {found} result(s) in {seconds:.0f}s", flush=True)
    print(f"\n{_machine()}{' (quick sizes: not the targets)' if args.quick else ''}\n")
    width = max([58, *(len(r["figure"]) for r in results), *(len(name) for name in failed)])
    header = f"{'figure':<{width}} {'value':>14} {'baseline':>14} {'ratio':>7}  {'target':<12} result"
    print(header)
    print("-" * len(header))
    for r in results:
        value = f"{r['value']:,.3f} {r['unit']}" if r["unit"] != "x" else f"{r['value']:.3f}x"
        baseline = "" if r["baseline"] is None else f"{r['baseline']:,.3f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        outcome = "pass" if r["pass"] else "FALLS SHORT"
        print(f"{r['figure']:<{width}} {value:>14} {baseline:>14} {ratio:>7}  {r['target']:<12} {outcome}")
    for name in failed:
        print(f"{name:<{width}} {'not run':>14}   (see {args.log})")
    Path(args.log).with_suffix(".json").write_text(
        json.dumps({"machine": _machine(), "results": results}, indent=1)
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
