"""Concurrent runs in object-store mode on one SQLite store and one bucket.

Four ``kubetfx run`` processes at once, two of them with the same parameters (so the same
cache keys: one may take the other's outputs from the cache, but only once they are all
in the store). Every run succeeds; every task a run ran wrote under that run's own prefix;
every consumer read the data its own producer made; lineage records no COMPLETE
execution, nor LIVE artifact, whose files in the store are not the ones it recorded.

The object store is a stand-in: moto's S3 server on loopback (see conftest.py) in place
of the cluster's MinIO, reached through s3fs exactly as MinIO would be.
"""

import os
import subprocess
import sys
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Output
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import storage
from kubetfx.dsl import component
from kubetfx.fingerprint import fingerprint_remote
from kubetfx.lineage.record import FINGERPRINT_KEY, outputs_of, props
from kubetfx.lineage.store import connect

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
FAN_OUT = 3
BASES = (10, 10, 20, 30)  # four runs at once; the first two share every cache key


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


def _matches_store(artifact: pb.Artifact) -> bool:
    recorded = props(artifact).get(FINGERPRINT_KEY)
    return bool(recorded) and fingerprint_remote(artifact.uri) == recorded


def test_concurrent_runs_in_one_bucket_and_one_sqlite_store(s3_env: str, workdir: Path, compile_to) -> None:
    path = compile_to(fan_out)
    root = f"s3://{s3_env}/root"
    env = {**os.environ, "TMPDIR": str(workdir)}
    procs = [
        subprocess.Popen(
            [KUBETFX, "run", str(path), "-q", "--pipeline-root", root, "--param", f"base={base}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        for base in BASES
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out
        assert "lock" not in out.lower(), out
    run_ids = [next(line.split()[1] for line in out.splitlines() if line.startswith("Run ")) for out in outs]
    assert len(set(run_ids)) == len(BASES)

    store = connect(os.environ["KUBETFX_METADATA"])
    for run_id, base in zip(run_ids, BASES, strict=True):
        ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
        executions = store.mlmd.get_executions_by_context(ctx.id)
        assert len(executions) == 2 * FAN_OUT, run_id
        assert {e.last_known_state for e in executions} <= {pb.Execution.COMPLETE, pb.Execution.CACHED}
        read = []
        for execution in executions:
            assert not props(execution)["cache_fingerprint"].startswith("upload-pending:"), execution
            events = store.mlmd.get_events_by_execution_ids([execution.id])
            ids = [e.artifact_id for e in events if e.type == pb.Event.INPUT]
            for artifact in store.mlmd.get_artifacts_by_id(ids):
                read.append(len(storage.read_bytes(artifact.uri)))
            if execution.last_known_state != pb.Execution.COMPLETE:
                continue
            for artifacts in outputs_of(store, execution.id).values():
                for artifact in artifacts:
                    # What a run ran, it wrote under its own prefix, and all of it is there.
                    assert artifact.uri.startswith(f"{root}/fan-out/{run_id}/"), (run_id, artifact.uri)
                    assert _matches_store(artifact), artifact.uri
        # Each consumer read its own producer's data (cached or not).
        assert sorted(read) == [base + i for i in range(FAN_OUT)], (run_id, read)
    for artifact in store.mlmd.get_artifacts():
        if artifact.state == pb.Artifact.LIVE and artifact.uri.startswith(root):
            assert _matches_store(artifact), artifact.uri
