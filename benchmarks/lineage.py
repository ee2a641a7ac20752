"""Lineage query cost against store size: provenance, impact and one run's tasks.

    python -m benchmarks.lineage [--executions 10000]

Fills a fresh SQLite store through kubetfx's own recording functions with runs of the
reference pipeline's shape (example-gen -> statistics-gen -> schema-gen -> trainer ->
evaluator -> pusher, six executions a run, each with its artifacts and events), measuring at 10%
and at 100% of the size, so the growth shows. Queries timed (median of 20):
provenance of the newest model (walk upstream), impact of the newest examples (walk
downstream), ``runs show`` of the newest run, and the audit of the newest push
(``MODEL_NAME:VERSION`` lookup, provenance walk, the evaluation found downstream).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import verdict

TASKS = (
    ("example-gen", [], [("examples", "system.Dataset")]),
    ("statistics-gen", ["examples"], [("statistics", "system.Artifact")]),
    ("schema-gen", ["statistics"], [("schema", "system.Artifact")]),
    ("trainer", ["examples", "schema"], [("model", "system.Model")]),
    (
        "evaluator",
        ["examples", "model"],
        [("evaluation", "kubetfx.ModelEvaluation"), ("blessing", "kubetfx.ModelBlessing")],
    ),
    ("pusher", ["model", "blessing"], [("pushed_model", "kubetfx.PushedModel")]),
)


def _fill(store, run_index: int) -> tuple[int, int, str]:
    from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution, start_execution, update_run

    run_id = f"bench-{run_index:06d}"
    produced: dict[str, ArtifactRecord] = {}
    update_run(store, Identity("bench", run_id, ""), state="SUCCEEDED")
    for task, inputs, outputs in TASKS:
        identity = Identity("bench", run_id, task)
        execution = start_execution(
            store, identity, params={"n": run_index}, inputs={k: [produced[k]] for k in inputs}
        )
        records = {
            key: [
                ArtifactRecord(
                    key=key,
                    uri=f"/bench/{run_id}/{task}/{key}",
                    schema_title=title,
                    metadata=_metadata(title, run_index),
                )
            ]
            for key, title in outputs
        }
        ids = finish_execution(store, identity, execution, outputs=records, output_params={})
        for key, [record] in records.items():
            record.id = ids[key][0]
            produced[key] = record
    return produced["model"].id, produced["examples"].id, run_id, run_index + 1


def _metadata(title: str, run_index: int) -> dict:
    """What the real components record, in the shape the audit reads."""
    if title == "kubetfx.ModelBlessing":
        return {"kubetfx_type": title, "blessed": 1, "model_name": "bench", "reasons": '["ok"]'}
    if title == "kubetfx.PushedModel":
        return {"kubetfx_type": title, "pushed": 1, "model_name": "bench", "version": run_index + 1}
    if title == "kubetfx.ModelEvaluation":
        return {"kubetfx_type": title, "slice_metrics": {"Overall": {"examples": 100, "accuracy": 0.9}}}
    return {"span": run_index}


def _median_ms(fn, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=10_000)
    args = parser.parse_args()
    from kubetfx.lineage import audit
    from kubetfx.lineage.graph import MLMDLineage
    from kubetfx.lineage.query import run_tasks
    from kubetfx.lineage.store import Store
    from kubetfx.settings import parse_metadata_url

    runs = max(2, args.executions // len(TASKS))
    checkpoints = sorted({max(1, runs // 10), runs})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(parse_metadata_url(f"sqlite:///{Path(tmp, 'bench.sqlite')}"))
        lineage = MLMDLineage(store)
        print(
            f"{'executions':>10} {'fill s':>8} {'provenance ms':>14} {'impact ms':>10} {'runs show ms':>13}"
            f" {'audit ms':>9}"
        )
        done, fill_seconds = 0, 0.0
        for target in checkpoints:
            started = time.perf_counter()
            while done < target:
                model_id, examples_id, run_id, version = _fill(store, done)
                done += 1
            fill_seconds += time.perf_counter() - started
            provenance = _median_ms(lambda m=model_id: lineage.walk(str(m), "up"))
            impact = _median_ms(lambda e=examples_id: lineage.walk(str(e), "down"))
            show = _median_ms(lambda r=run_id: run_tasks(store, r))
            audited = _median_ms(lambda v=version: audit.build(lineage, f"bench:{v}"))
            print(
                f"{done * len(TASKS):>10} {fill_seconds:8.1f} {provenance:14.2f} {impact:10.2f} {show:13.2f}"
                f" {audited:9.2f}"
            )
    print("target: provenance of one model under 100 ms with SQLite")
    verdict(
        f"lineage: provenance of a model, {done * len(TASKS):,} executions",
        provenance / 1000,
        None,
        None,
        "< 0.1 s",
        provenance < 100,
    )


if __name__ == "__main__":
    main()
