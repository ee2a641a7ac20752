"""Reading canary and stable request metrics from Prometheus's HTTP API.

:class:`Prometheus` runs instant queries (``/api/v1/query``); :class:`Queries` holds the
PromQL a rollout asks, as templates with ``{revision}`` (the revision's name) and
``{window}`` (a range such as ``30s``). The defaults name the metrics Knative's queue-proxy
exports for every revision of a KServe Serverless InferenceService
(``revision_app_request_count`` with ``response_code_class``, and the histogram
``revision_app_request_latencies`` in milliseconds, labelled ``revision_name``); the
loopback stand-in router (:mod:`kubetfx.serving.router`) exports the same names, so the
same queries run in tests and in a cluster. Knative 1.19 and later can export
OpenTelemetry names instead: set the templates to what your Prometheus holds.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubetfx.errors import KubetfxError


class PrometheusError(KubetfxError):
    """Prometheus could not be asked, or answered with an error."""


@dataclass(frozen=True)
class Queries:
    """PromQL templates; ``{revision}`` and ``{window}`` are filled in per question."""

    requests: str = 'sum(increase(revision_app_request_count{{revision_name="{revision}"}}[{window}]))'
    errors: str = (
        "sum(increase(revision_app_request_count"
        '{{revision_name="{revision}",response_code_class="5xx"}}[{window}]))'
    )
    p95_ms: str = (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(revision_app_request_latencies_bucket{{revision_name="{revision}"}}[{window}])))'
    )

    def render(self, template: str, revision: str, window_s: float) -> str:
        if '"' in revision or "\\" in revision:
            raise PrometheusError(f"revision name {revision!r} cannot go into a query")
        return template.format(revision=revision, window=f"{max(1, round(window_s))}s")


@dataclass(frozen=True)
class RevisionStats:
    """One revision's traffic over a window."""

    revision: str
    requests: float
    errors: float
    p95_ms: float | None  # None: no latency observed in the window

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None


class Prometheus:
    """A Prometheus server's query API."""

    def __init__(self, url: str, *, timeout: float = 10.0, queries: Queries | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise PrometheusError(f"Prometheus URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.queries = queries or Queries()

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector (or scalar, as one unlabelled sample)."""
        target = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            # The scheme is http(s): checked in __init__.
            with urllib.request.urlopen(target, timeout=self.timeout) as response:  # noqa: S310
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise PrometheusError(
                f"Prometheus at {self.url} refused {promql!r}: {err.code} {detail}"
            ) from err
        except (OSError, ValueError) as err:
            raise PrometheusError(f"Prometheus at {self.url} could not be asked {promql!r}: {err}") from err
        if answer.get("status") != "success":
            raise PrometheusError(
                f"Prometheus at {self.url} answered {promql!r} with {answer.get('error')!r}"
            )
        data = answer.get("data") or {}
        if data.get("resultType") == "scalar":
            return [({}, float(data["result"][1]))]
        return [
            (dict(item.get("metric") or {}), float(item["value"][1])) for item in data.get("result") or []
        ]

    def value(self, promql: str) -> float | None:
        """The single value a query gives; None when empty or NaN (no data in the window)."""
        found = self.query(promql)
        if not found:
            return None
        if len(found) > 1:
            raise PrometheusError(f"{promql!r} gave {len(found)} series; a rollout query must give one")
        number = found[0][1]
        return None if math.isnan(number) else number

    def revision(self, revision: str, window_s: float) -> RevisionStats:
        """Requests, 5xx errors and p95 latency of ``revision`` over the last ``window_s``."""
        q = self.queries
        return RevisionStats(
            revision=revision,
            requests=self.value(q.render(q.requests, revision, window_s)) or 0.0,
            errors=self.value(q.render(q.errors, revision, window_s)) or 0.0,
            p95_ms=self.value(q.render(q.p95_ms, revision, window_s)),
        )


@contextlib.contextmanager
def local_prometheus(target: str, *, scrape_interval_s: int = 1, timeout: float = 60.0) -> Iterator[str]:
    """Prometheus (the ``prometheus`` binary on PATH, e.g. Debian's) on a free loopback port,
    scraping ``target`` (``host:port``, path ``/metrics``) as job ``router``; yields its URL
    once the target is up, and always stops it."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusError(
            "no prometheus binary on PATH: install one (apt-get install prometheus) or pass --prometheus"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="kubetfx-prometheus-") as base:
        config = os.path.join(base, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                f"global:\n  scrape_interval: {scrape_interval_s}s\n"
                f"  evaluation_interval: {scrape_interval_s}s\n"
                f"scrape_configs:\n  - job_name: router\n    static_configs:\n      - targets: ['{target}']\n"
            )
        log_path = os.path.join(base, "prometheus.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={os.path.join(base, 'data')}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            client = Prometheus(f"http://127.0.0.1:{port}", timeout=2.0)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if client.value('up{job="router"}') == 1:
                        break
                except PrometheusError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    with open(log_path, errors="replace") as f:
                        tail = f.read()[-2000:]
                    raise PrometheusError(f"Prometheus did not come up scraping {target}:\n{tail}")
                time.sleep(0.2)
            yield client.url
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
