"""Shared fixtures (no sys.path edits): a real MariaDB server for the MySQL store, and data
sets' artifacts and models trained on them, made once per session."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kubetfx.components.trainer.executor import TrainResult

REPO = Path(__file__).resolve().parents[1]
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))


@pytest.fixture(scope="session", autouse=True)
def warm_workers(tmp_path_factory):
    """The test session's own warm workers (kubetfx.local.warm), stopped when it ends:
    never a developer's, and none left behind idling after CI."""
    from kubetfx.local import warm

    base = str(tmp_path_factory.mktemp("warm"))
    previous = os.environ.get(warm.DIR_ENV)
    os.environ[warm.DIR_ENV] = base
    yield base
    warm.stop(base, wait=10, now=True)
    if previous is None:
        os.environ.pop(warm.DIR_ENV, None)
    else:
        os.environ[warm.DIR_ENV] = previous


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder with its own metadata store and pipeline root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBETFX_METADATA", f"sqlite:///{tmp_path}/mlmd.sqlite")
    monkeypatch.setenv("KUBETFX_PIPELINE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("KUBETFX_PUSH_ROOT", str(tmp_path / "serving"))
    return tmp_path


@pytest.fixture
def compile_to(tmp_path: Path):
    """Compile a pipeline function to YAML in the test's folder; returns the path."""
    from kfp import compiler

    def _compile(pipeline_func, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        compiler.Compiler().compile(pipeline_func, str(path))
        return path

    return _compile


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the kubetfx CLI as a user would; returns the completed process (text output)."""
    return subprocess.run(
        [KUBETFX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    """The run_cli helper as a fixture."""
    return run_cli


USER, PASSWORD, DATABASE = "kubetfx", "pa55-w0rd-for-tests", "mlmd"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if found:
            return found
    pytest.fail(f"{names[0]} not found: install Debian's mariadb-server (make test does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start mariadbd with a user and password; yields connection facts."""
    datadir = tmp_path_factory.mktemp("mariadb")
    install = _binary("mariadb-install-db", "mysql_install_db")
    server = _binary("mariadbd", "mysqld")
    client = _binary("mariadb", "mysql")
    subprocess.run(
        [install, f"--datadir={datadir}", "--user=root", "--auth-root-authentication-method=socket"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    sock = str(datadir / "sock")
    log = open(datadir / "server.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            server,
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            f"--pid-file={datadir}/pid",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while True:
        ping = subprocess.run([client, "-S", sock, "-u", "root", "-e", "SELECT 1"], capture_output=True)
        if ping.returncode == 0:
            break
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"mariadbd did not start: {(datadir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    sql = (
        f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
        f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'; FLUSH PRIVILEGES;"
    )
    subprocess.run([client, "-S", sock, "-u", "root", "-e", sql], check=True, capture_output=True)
    try:
        yield {"port": port, "user": USER, "password": PASSWORD, "socket": sock, "client": client}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def mysql_url(mariadb: dict) -> Iterator[str]:
    """A fresh database on the shared server for one test."""
    name = f"{DATABASE}_{time.time_ns()}"
    yield f"mysql://{mariadb['user']}:{mariadb['password']}@127.0.0.1:{mariadb['port']}/{name}"
    subprocess.run(
        [mariadb["client"], "-S", mariadb["socket"], "-u", "root", "-e", f"DROP DATABASE IF EXISTS {name}"],
        capture_output=True,
    )


# ---------------------------------------------------------------------- artifacts and models
# The executors' artifacts of a data set, and models trained on them, made once per session
# for each set of arguments and shared by the Trainer's, Evaluator's, Pusher's and the
# bad-input tests (training is the slow part of those suites). Treat them as read-only:
# a test that changes a model copies it first.

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PENGUINS_SCHEMA = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


@dataclass(frozen=True)
class Prepared:
    """ExampleGen's, StatisticsGen's and SchemaGen's artifacts of one data set."""

    examples: str
    statistics: str
    schema: str
    metadata: dict[str, dict[str, Any]]  # per artifact, its metadata as its executor reports it

    def paths(self) -> dict[str, str]:
        """{"examples": ..., "statistics": ..., "schema": ...}."""
        return {"examples": self.examples, "statistics": self.statistics, "schema": self.schema}


@dataclass(frozen=True)
class Trained:
    """A model the Trainer's executor wrote (``path``) from ``data``, and what it returned."""

    path: str
    data: Prepared
    result: TrainResult


@pytest.fixture(scope="session")
def prepare_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Prepared]:
    """``prepare_data(source=PENGUINS, label_key="species", schema_file=PENGUINS_SCHEMA)``:
    a data set's examples, statistics and schema, made by the executors ("" infers the schema)."""
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen

    made: dict[tuple[str, str, str], Prepared] = {}

    def prepare(
        source: str = PENGUINS, label_key: str = "species", schema_file: str = PENGUINS_SCHEMA
    ) -> Prepared:
        key = (source, label_key, schema_file)
        if key not in made:
            root = tmp_path_factory.mktemp("prepared")
            examples, statistics, schema = (str(root / n) for n in ("examples", "statistics", "schema"))
            gen = example_gen.run(source, examples)
            stats = statistics_gen.run(examples, statistics)
            inferred = schema_gen.run(statistics, schema, schema_file=schema_file, label_key=label_key)
            metadata = {
                "examples": gen.metadata(),
                "statistics": stats.metadata(gen.metadata()),
                "schema": inferred.metadata(),
            }
            made[key] = Prepared(examples, statistics, schema, metadata)
        return made[key]

    return prepare


@pytest.fixture(scope="session")
def train_model(
    tmp_path_factory: pytest.TempPathFactory, prepare_data: Callable[..., Prepared]
) -> Callable[..., Trained]:
    """``train_model(data=None, label_key="species", **trainer_arguments)``: a model the
    Trainer's executor trains on ``data`` (default: the penguins, curated schema)."""
    from kubetfx.components.trainer import executor as trainer

    made: dict[tuple[str, str, str], Trained] = {}

    def train(data: Prepared | None = None, label_key: str = "species", **arguments: Any) -> Trained:
        data = data or prepare_data()
        key = (data.examples, label_key, json.dumps(arguments, sort_keys=True))
        if key not in made:
            path = str(tmp_path_factory.mktemp("trained") / "model")
            result = trainer.run(
                data.examples, data.schema, data.statistics, path, label_key=label_key, **arguments
            )
            made[key] = Trained(path, data, result)
        return made[key]

    return train


class RunProcesses:
    """What the crash and kill tests check is left of a run, read from /proc."""

    @staticmethod
    def alive(pid: int) -> bool:
        """Whether ``pid`` runs (a zombie does not count)."""
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        return "zombie" not in status

    def of(self, run_id: str) -> list[int]:
        """Live processes (not this one) whose command line names the run: task commands
        carry its output paths or URIs."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if run_id.encode() in cmdline and self.alive(int(entry.name)):
                    found.append(int(entry.name))
        return found


@pytest.fixture
def run_processes() -> RunProcesses:
    """Looking for a run's processes (see :class:`RunProcesses`)."""
    return RunProcesses()
