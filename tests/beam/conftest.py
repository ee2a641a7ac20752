"""Beam across processes: one worker pool per session, and small generated data.

The pool is Beam's own SDK worker pool (``apache_beam.runners.worker.worker_pool_main``),
started as a separate process on a free port: every pipeline the tests run goes through
Beam's portability API (``PortableRunner``, an embedded job service) to SDK workers the
pool starts in processes of their own, the gRPC contract Flink, Spark and Dataflow use
with their workers. It is stopped, with every worker it started, when the session ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROWS = 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Beam options that run a pipeline on SDK workers in other processes (the pool's)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("beam-pool") / "pool.log"
    env = dict(os.environ)
    # The pool starts each worker with the `python` on PATH: this interpreter's.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    with open(log, "wb") as out:
        pool = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the workers go with it
        )
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            if pool.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Beam worker pool did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield [
            "--runner=PortableRunner",
            "--job_endpoint=embed",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{port}",
        ]
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pool.pid, sig)
            except ProcessLookupError:
                break
            try:
                pool.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        pool.wait(timeout=15)
        # Workers are in the pool's process group: none may outlive it.
        deadline = time.monotonic() + 15
        while _group_alive(pool.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(pool.pid), "Beam workers outlived their pool"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies (exited, not yet reaped by init) count as gone.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            return True
    return False


def _frame(seed: int, rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    score = rng.random(rows)
    # The label follows the score, more loosely in group c.
    noise = np.where(group == "c", 0.35, 0.15)
    label = np.where(score + rng.normal(0, noise) > 0.5, "yes", "no")
    frame = pd.DataFrame(
        {
            "id": np.arange(rows) + seed * 1_000_000,
            "group": group,
            "score": score.round(4),
            "count": rng.poisson(3, rows),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kobe", None], rows),
            "height": np.where(rng.random(rows) < 0.05, np.nan, rng.normal(170, 10, rows).round(1)),
            "label": label,
        }
    )
    return frame


@pytest.fixture(scope="session")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same rows as two CSV files (``count`` whole numbers in one, decimals in the
    other: the column's type is unified across files) and as a Parquet file of several
    row groups; plus a serving sample (no label)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("beam-data")
    first, second = _frame(1, ROWS // 2), _frame(2, ROWS - ROWS // 2)
    second["count"] = second["count"] + 0.5
    (root / "csv").mkdir()
    first.to_csv(root / "csv" / "part-1.csv", index=False)
    second.to_csv(root / "csv" / "part-2.csv", index=False)
    (root / "parquet").mkdir()
    both = pa.Table.from_pandas(
        __import__("pandas").concat([first, second], ignore_index=True), preserve_index=False
    )
    pq.write_table(both, root / "parquet" / "data.parquet", row_group_size=700)
    serving = _frame(3, 800).drop(columns=["label"])
    serving.to_csv(root / "serving.csv", index=False)
    return {
        "csv": str(root / "csv"),
        "parquet": str(root / "parquet"),
        "serving": str(root / "serving.csv"),
    }


@pytest.fixture(scope="session")
def score_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A binary model (classes no, yes) in the serving layout: P(yes) = the ``score``
    feature. A rule, not a trained network: its answers do not depend on how examples
    are batched, so two engines must agree to the last bit."""
    import tensorflow as tf

    class Score(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(
                examples, {"score": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
            )
            yes = tf.clip_by_value(tf.reshape(parsed["score"], [-1]), 0.0, 1.0)
            batch = tf.shape(examples)[0]
            return {
                "probabilities": tf.stack([1.0 - yes, yes], axis=1),
                "all_classes": tf.tile(tf.constant([["no", "yes"]]), [batch, 1]),
            }

    root = tmp_path_factory.mktemp("score-model")
    module = Score()
    tf.saved_model.save(module, str(root / "Format-Serving"), signatures={"serving_default": module.serve})
    return str(root)
