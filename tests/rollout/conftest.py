"""A canary rollout on loopback with real parts where they exist here:

* two real KServe Python model servers (the serving environment, ``make serving-env``),
  one per pushed version of a model the Trainer trained;
* the loopback router, the *stand-in* for a cluster's Knative route (the traffic split)
  and queue-proxy (per-revision request metrics): :mod:`kubetfx.serving.router`;
* a fault-injecting hop between the router and the canary (test code, like a service
  mesh's fault filter) that can be switched on mid-rollout;
* a real Prometheus (Debian's) scraping the router every second;
* a load generator sending real V1 predict requests through the router;
* a real SQLite ML Metadata store with the two versions' push records.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubetfx.artifacts.kinds import MODEL, PUSHED_MODEL, TYPE_KEY
from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution, start_execution
from kubetfx.lineage.store import Store, connect
from kubetfx.serving.router import Router, Upstream

MODEL_NAME = "penguins"
STABLE, CANARY = 1, 2
REVISIONS = {STABLE: f"{MODEL_NAME}-predictor-00001", CANARY: f"{MODEL_NAME}-predictor-00002"}
SCRAPE_INTERVAL_S = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- model and servers


@dataclass
class Served:
    push_root: Path
    payloads: list[bytes]
    stable_url: str
    canary_url: str


@pytest.fixture(scope="session")
def served(train_model: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Versions 1 and 2 of a trained model published under a push root, each served by its
    own KServe model server on loopback."""
    from kubetfx.artifacts.examples import first_records
    from kubetfx.artifacts.model import find_saved_model
    from kubetfx.serving.modelserver import running_server, serving_python

    if serving_python() is None:
        pytest.fail("no serving environment: run `make serving-env` (the tests need KServe's model server)")
    trained = train_model(hyperparameters={"epochs": 2})
    root = tmp_path_factory.mktemp("push-root")
    for version in (STABLE, CANARY):
        shutil.copytree(find_saved_model(trained.path), root / MODEL_NAME / str(version))
    payloads = [
        json.dumps({"instances": [{"b64": base64.b64encode(r).decode("ascii")}]}).encode()
        for r in first_records(trained.data.examples, "eval", 8)
    ]
    with (
        running_server(str(root / MODEL_NAME / str(STABLE)), MODEL_NAME, timeout=240, threads=2) as stable,
        running_server(str(root / MODEL_NAME / str(CANARY)), MODEL_NAME, timeout=240, threads=2) as canary,
    ):
        # A model's first calls trace its graph (hundreds of ms): warm both up, as a
        # revision's readiness probe and first traffic would in a cluster.
        for server in (stable, canary):
            for body in payloads * 3:
                request = urllib.request.Request(  # noqa: S310 - loopback http
                    f"{server.url}/v1/models/{MODEL_NAME}:predict",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                    assert answer.status == 200
        yield Served(root, payloads, stable.url, canary.url)


# ---------------------------------------------------------------------- the fault hop


class FaultHop:
    """A proxy in front of the canary that, once switched on, fails every ``every``-th
    request with a 500 or delays every request by ``delay_s`` (test code: what a service
    mesh's fault-injection filter does)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.every = 0
        self.delay_s = 0.0
        self.started: float | None = None  # monotonic time the fault was switched on
        self._count = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail_every(self, every: int) -> None:
        with self._lock:
            self.every, self._count, self.started = every, 0, time.monotonic()

    def delay(self, seconds: float) -> None:
        with self._lock:
            self.delay_s, self.started = seconds, time.monotonic()

    def _fault(self) -> tuple[bool, float]:
        with self._lock:
            self._count += 1
            return bool(self.every and self._count % self.every == 0), self.delay_s

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fail, delay = hop._fault()
                if delay:
                    time.sleep(delay)
                if fail:
                    code, payload = 500, b'{"error": "injected fault"}'
                else:
                    conn = http.client.HTTPConnection(*hop.upstream, timeout=30)
                    try:
                        conn.request(
                            "POST", self.path, body=body, headers={"Content-Type": "application/json"}
                        )
                        answer = conn.getresponse()
                        code, payload = answer.status, answer.read()
                    finally:
                        conn.close()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        return Handler


# ---------------------------------------------------------------------- load


@dataclass
class Load:
    """Threads posting predict requests to a URL until stopped; counts answers by status."""

    url: str
    payloads: list[bytes]
    threads: int = 4
    statuses: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, offset: int) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        i = offset
        while not self._stop.is_set():
            body = self.payloads[i % len(self.payloads)]
            i += 1
            try:
                conn.request(
                    "POST",
                    f"/v1/models/{MODEL_NAME}:predict",
                    body=body,
                    headers={"Content-Type": "application/json"},
                )
                answer = conn.getresponse()
                answer.read()
                self.statuses[answer.status] += 1
            except (OSError, http.client.HTTPException):
                self.statuses[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.close()

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=35)


# ---------------------------------------------------------------------- prometheus


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        pytest.fail("prometheus is not installed: make test installs Debian's prometheus")
    return found


def start_prometheus(base: Path, target: str) -> PrometheusServer:
    """Debian's Prometheus on a free loopback port scraping ``target`` (host:port) every second."""
    port = _free_port()
    (base / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: router\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    log = base / "prometheus.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                _prometheus_binary(),
                f"--config.file={base / 'prometheus.yml'}",
                f"--storage.tsdb.path={base / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    query = f"{server.url}/api/v1/query?query=up%7Bjob%3D%22router%22%7D"
    while True:
        try:
            with urllib.request.urlopen(query, timeout=2) as response:  # noqa: S310 - loopback http
                result = json.load(response)["data"]["result"]
            if result and result[0]["value"][1] == "1":
                return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            pytest.fail(f"Prometheus did not come up scraping {target}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------- one rollout's rig


@dataclass
class Rig:
    router: Router
    hop: FaultHop
    prometheus: PrometheusServer
    load: Load
    store: Store


def record_push(store: Store, root: Path, version: int) -> None:
    """A Trainer and a Pusher execution of ``version`` in lineage, as the task wrapper writes them."""
    run = f"run-{version}"
    model_uri = str(root / "runs" / run / "model")
    trained = Identity(pipeline_name="training", run_id=run, task_name="trainer")
    execution = start_execution(store, trained, params={}, inputs={})
    model = ArtifactRecord("model", model_uri, "system.Model", {TYPE_KEY: MODEL})
    model.id = finish_execution(store, trained, execution, outputs={"model": [model]}, output_params={})[
        "model"
    ][0]
    pusher = Identity(pipeline_name="training", run_id=run, task_name="pusher")
    execution = start_execution(store, pusher, params={"model_name": MODEL_NAME}, inputs={"model": [model]})
    pushed = ArtifactRecord(
        "pushed_model",
        str(root / "runs" / run / "pushed"),
        "system.Artifact",
        {
            TYPE_KEY: PUSHED_MODEL,
            "pushed": 1,
            "model_name": MODEL_NAME,
            "model_uri": model_uri,
            "version": version,
            "destination": str(root / MODEL_NAME / str(version)),
            "pushed_at": f"2026-01-0{version}T00:00:00Z",
        },
    )
    finish_execution(
        store, pusher, execution, outputs={"pushed_model": [pushed]}, output_params={"pushed": True}
    )


@pytest.fixture
def rig(served: Served, tmp_path: Path) -> Iterator[Rig]:
    """Router (stable + canary behind the fault hop), Prometheus scraping it, load running,
    and a metadata store holding both versions' pushes with ``production`` on the stable."""
    from kubetfx.lineage.aliases import assign_alias

    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    for version in (STABLE, CANARY):
        record_push(store, served.push_root, version)
    assign_alias(store, MODEL_NAME, STABLE, "production", reason="first version")
    hop = FaultHop(served.canary_url)
    router = Router(
        Upstream(served.stable_url, REVISIONS[STABLE]),
        Upstream(hop.url, REVISIONS[CANARY]),
        service=MODEL_NAME,
    ).start()
    prometheus = None
    load = None
    try:
        prometheus = start_prometheus(tmp_path, router.url.removeprefix("http://"))
        load = Load(router.url, served.payloads).start()
        yield Rig(router, hop, prometheus, load, store)
    finally:
        if load is not None:
            load.stop()
        if prometheus is not None:
            stop_process(prometheus.process)
        router.stop()
        hop.stop()


@pytest.fixture
def recorded_push() -> Callable[[Store, Path, int], None]:
    """``recorded_push(store, root, version)``: the lineage of a trained and pushed version."""
    return record_push


@pytest.fixture
def start_load(served: Served) -> Iterator[Callable[[str], Load]]:
    """``start_load(url)``: predict requests sent to ``url`` until the test ends."""
    started: list[Load] = []

    def start(url: str) -> Load:
        load = Load(url, served.payloads).start()
        started.append(load)
        return load

    yield start
    for load in started:
        load.stop()
