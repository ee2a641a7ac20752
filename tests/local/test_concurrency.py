"""Concurrent runs against one metadata store lose nothing."""

import os
import subprocess
import sys
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Output
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.dsl import component
from kubetfx.lineage.store import connect

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
FAN_OUT = 4
RUNS = 8  # eight runs at once on one store


@component
def produce(n: int, offset: int, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("x" * (n + offset))


@component
def consume(data: Input[Dataset]) -> int:
    with open(data.path) as f:
        return len(f.read())


@dsl.pipeline(name="fan-out")
def fan_out(base: int = 1):
    for i in range(FAN_OUT):
        consume(data=produce(n=base, offset=i).outputs["data"])


def run_concurrently(path: Path, runs: int, env: dict[str, str]) -> list[str]:
    procs = [
        subprocess.Popen(
            [KUBETFX, "run", str(path), "--no-cache", "-q", "--param", f"base={10 * k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        for k in range(runs)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out
        assert "lock" not in out.lower(), out
    return [next(line.split()[1] for line in out.splitlines() if line.startswith("Run ")) for out in outs]


def assert_complete_lineage(store, run_ids: list[str]) -> None:
    for run_id in run_ids:
        ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
        executions = store.mlmd.get_executions_by_context(ctx.id)
        assert len(executions) == 2 * FAN_OUT, run_id
        assert {e.last_known_state for e in executions} == {pb.Execution.COMPLETE}
        events = store.mlmd.get_events_by_execution_ids([e.id for e in executions])
        assert sum(e.type == pb.Event.OUTPUT for e in events) == FAN_OUT
        assert sum(e.type == pb.Event.INPUT for e in events) == FAN_OUT
        artifacts = store.mlmd.get_artifacts_by_context(ctx.id)
        assert len(artifacts) == FAN_OUT and all(os.path.exists(a.uri) for a in artifacts)


def test_concurrent_runs_on_one_sqlite_store(workdir: Path, compile_to) -> None:
    path = compile_to(fan_out)
    run_ids = run_concurrently(path, RUNS, dict(os.environ))
    assert len(set(run_ids)) == RUNS
    assert_complete_lineage(connect(os.environ["KUBETFX_METADATA"]), run_ids)


def test_concurrent_runs_on_one_mariadb_store(workdir: Path, compile_to, mysql_url: str) -> None:
    path = compile_to(fan_out)
    run_ids = run_concurrently(path, RUNS, {**os.environ, "KUBETFX_METADATA": mysql_url})
    assert len(set(run_ids)) == RUNS
    assert_complete_lineage(connect(mysql_url), run_ids)
