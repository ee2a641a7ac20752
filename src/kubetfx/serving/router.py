"""A STAND-IN for the one part of a cluster's KServe a rollout needs: the traffic split.

In a cluster, KServe (Serverless mode) turns ``canaryTrafficPercent`` into a Knative
route that sends that share of requests to the canary revision and the rest to the last
rolled-out one, and Knative's queue-proxy beside every model server counts requests and
latencies per revision. :class:`Router` does both on loopback, so that the rollout
controller, Prometheus and its queries run here exactly as they would there:

* it forwards every request (any path, any method) to the stable or the canary upstream,
  a share ``canary_percent`` of them to the canary, spread evenly (not at random: after
  ``n`` requests the canary has had ``round(n * percent / 100)`` of them, give or take one);
* it serves ``/metrics`` with the metric names and labels of Knative's queue-proxy:
  ``revision_app_request_count`` (labels ``namespace_name``, ``service_name``,
  ``configuration_name``, ``revision_name``, ``response_code``, ``response_code_class``)
  and the histogram ``revision_app_request_latencies`` in milliseconds, with Knative's
  bucket bounds;
* ``GET``/``PUT /-/canary`` reads or sets the canary share (``{"percent": N}``).

What it does not prove: anything about Knative routing itself (activator, scale from
zero, revision readiness, how fast a route update reaches the ingress gateway), Istio or
the Gateway API, or KServe's handling of ``canaryTrafficPercent``; a request's latency here
is measured by the router (one hop), not by a sidecar in the model server's pod.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from kubetfx.errors import ParameterError

# Knative's queue-proxy latency buckets (milliseconds; knative.dev/serving pkg/metrics).
LATENCY_BUCKETS_MS = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000,
    2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip
# Response codes each revision's counter starts with at 0, so that Prometheus's increase()
# counts the first error of a kind too (a series that appears with value 1 has no increase).
INITIAL_CODES = (200, 400, 404, 500, 502, 503, 504)
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host"}


@dataclass(frozen=True)
class Upstream:
    """One side of the split: a model server and the revision name its metrics carry."""

    url: str  # http://host:port
    revision: str

    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ParameterError(f"upstream URL must be http://HOST:PORT, not {self.url!r}")
        return parts.hostname, parts.port


class _Metrics:
    """The queue-proxy's two request metrics, in Prometheus's text format (written here:
    prometheus_client would name the counter ``..._total``, which Knative's is not)."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace, self.service = namespace, service
        self._lock = threading.Lock()
        # label tuple -> [count, latency sum, per-bucket counts (not cumulative)]
        self._series: dict[tuple[tuple[str, str], ...], list[Any]] = {}

    def _key(self, revision: str, code: int) -> tuple[tuple[str, str], ...]:
        return (
            ("namespace_name", self.namespace),
            ("service_name", self.service),
            ("configuration_name", f"{self.service}-predictor"),
            ("revision_name", revision),
            ("response_code", str(code)),
            ("response_code_class", f"{code // 100}xx"),
        )

    def _entry(self, key: tuple[tuple[str, str], ...]) -> list[Any]:
        return self._series.setdefault(key, [0, 0.0, [0] * (len(LATENCY_BUCKETS_MS) + 1)])

    def start(self, revision: str) -> None:
        with self._lock:
            for code in INITIAL_CODES:
                self._entry(self._key(revision, code))

    def observe(self, revision: str, code: int, millis: float) -> None:
        slot = next(
            (i for i, bound in enumerate(LATENCY_BUCKETS_MS) if millis <= bound), len(LATENCY_BUCKETS_MS)
        )
        with self._lock:
            entry = self._entry(self._key(revision, code))
            entry[0] += 1
            entry[1] += millis
            entry[2][slot] += 1

    def exposition(self) -> bytes:
        def labels(key: tuple[tuple[str, str], ...], extra: str = "") -> str:
            parts = [f'{k}="{v}"' for k, v in key]
            return "{" + ",".join(parts + ([extra] if extra else [])) + "}"

        with self._lock:
            series = {k: (v[0], v[1], list(v[2])) for k, v in sorted(self._series.items())}
        lines = [
            "# HELP revision_app_request_count The number of requests that are routed to user-container",
            "# TYPE revision_app_request_count counter",
        ]
        lines += [f"revision_app_request_count{labels(k)} {count}" for k, (count, _, _) in series.items()]
        lines += [
            "# HELP revision_app_request_latencies The response time in millisecond",
            "# TYPE revision_app_request_latencies histogram",
        ]
        for key, (count, total, buckets) in series.items():
            running = 0
            for bound, n in zip(LATENCY_BUCKETS_MS, buckets, strict=False):
                running += n
                le = 'le="' + str(bound) + '"'
                lines.append(f"revision_app_request_latencies_bucket{labels(key, le)} {running}")
            inf = 'le="+Inf"'
            lines.append(f"revision_app_request_latencies_bucket{labels(key, inf)} {count}")
            lines.append(f"revision_app_request_latencies_sum{labels(key)} {total}")
            lines.append(f"revision_app_request_latencies_count{labels(key)} {count}")
        return ("\n".join(lines) + "\n").encode()


class Router:
    """The stand-in traffic split; start with :meth:`start`, always :meth:`stop`."""

    def __init__(
        self,
        stable: Upstream,
        canary: Upstream | None = None,
        *,
        canary_percent: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        namespace: str = "local",
        service: str = "model",
        timeout: float = 30.0,
    ) -> None:
        stable.address()
        if canary is not None:
            canary.address()
        self.stable, self.canary = stable, canary
        self.timeout = timeout
        self._lock = threading.Lock()
        self._percent = 0
        self._sent = 0  # requests routed since the share last changed
        self._to_canary = 0
        self.metrics = _Metrics(namespace, service)
        self.metrics.start(stable.revision)
        if canary is not None:
            self.metrics.start(canary.revision)
        self.set_percent(canary_percent)
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def percent(self) -> int:
        with self._lock:
            return self._percent

    def set_percent(self, percent: int) -> None:
        """Send ``percent`` (0-100) of the requests from now on to the canary."""
        percent = int(percent)
        if not 0 <= percent <= 100:
            raise ParameterError(f"canary percent must be within 0-100, not {percent}")
        if percent and self.canary is None:
            raise ParameterError("the router has no canary upstream to send traffic to")
        with self._lock:
            self._percent, self._sent, self._to_canary = percent, 0, 0

    def pick(self) -> Upstream:
        """The upstream for the next request (even spread of the current share)."""
        with self._lock:
            self._sent += 1
            if self.canary is not None and self._to_canary * 100 < self._sent * self._percent:
                self._to_canary += 1
                return self.canary
            return self.stable

    def start(self) -> Router:
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubetfx-router", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Router:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(router: Router) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    def connection(upstream: Upstream) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = local.__dict__.setdefault("pool", {})
        if upstream.url not in pool:
            host, port = upstream.address()
            pool[upstream.url] = http.client.HTTPConnection(host, port, timeout=router.timeout)
        return pool[upstream.url]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _reply(
            self, code: int, body: bytes, content_type: str, headers: list[tuple[str, str]] | None = None
        ) -> None:
            self.send_response(code)
            sent = {"content-type", "content-length"}
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers or []:
                if name.lower() not in _HOP_HEADERS and name.lower() not in sent:
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _admin(self) -> bool:
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and self.command == "GET":
                self._reply(200, router.metrics.exposition(), "text/plain; version=0.0.4")
                return True
            if path == "/-/canary":
                if self.command == "PUT":
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    try:
                        router.set_percent(int(json.loads(body or b"{}")["percent"]))
                    except (KeyError, TypeError, ValueError, ParameterError) as err:
                        self._reply(400, json.dumps({"error": str(err)}).encode(), "application/json")
                        return True
                self._reply(200, json.dumps({"percent": router.percent}).encode(), "application/json")
                return True
            if path == "/-/ready":
                self._reply(200, b"ready\n", "text/plain")
                return True
            return False

        def _forward(self) -> None:
            if self._admin():
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = router.pick()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            started = time.perf_counter()
            try:
                try:
                    conn = connection(upstream)
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                except (ConnectionError, http.client.HTTPException):
                    # A kept-alive connection the upstream closed: once more, fresh.
                    local.pool.pop(upstream.url).close()
                    conn = connection(upstream)
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                payload = response.read()
                code, reply_headers = response.status, response.getheaders()
                content_type = response.getheader("Content-Type", "application/octet-stream")
            except OSError as err:
                local.__dict__.get("pool", {}).pop(upstream.url, None)
                code, reply_headers = 502, []
                payload = json.dumps({"error": f"upstream {upstream.revision}: {err}"}).encode()
                content_type = "application/json"
            router.metrics.observe(upstream.revision, code, (time.perf_counter() - started) * 1000.0)
            self._reply(code, payload, content_type, reply_headers)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    return Handler
