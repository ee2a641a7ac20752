"""The parts of a rollout that need no model server: the router's split and metrics, the
verdicts on one window of figures, step parsing, and rollouts kept in lineage."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubetfx.errors import ParameterError
from kubetfx.lineage.rollouts import Rollout, Step, rollouts_of, save
from kubetfx.lineage.store import connect
from kubetfx.serving.prometheus import Queries, RevisionStats
from kubetfx.serving.rollout import Thresholds, judge, parse_seconds, parse_steps
from kubetfx.serving.router import Router, Upstream


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"who": self.server.name}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstreams() -> Iterator[tuple[str, str]]:
    """Two tiny HTTP servers answering which one they are (the split is what is tested)."""
    servers = []
    for name in ("stable", "canary"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


def _post(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _samples(router: Router) -> dict[tuple[str, str, str], float]:
    """``(sample name, revision, code class)`` -> value, from the router's /metrics."""
    with urllib.request.urlopen(f"{router.url}/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    assert "revision_app_request_count{" in text, "the counter keeps Knative's name (no _total)"
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith(("_bucket",)) and s.labels.get("le") != "+Inf":
                continue
            # The parser names every counter sample ..._total; the exposition did not.
            key = (s.name.removesuffix("_total"), s.labels["revision_name"], s.labels["response_code_class"])
            found[key] = found.get(key, 0.0) + s.value
    return found


def test_the_router_splits_traffic_evenly_and_counts_it_as_queue_proxy_does(
    upstreams: tuple[str, str],
) -> None:
    stable, canary = upstreams
    with Router(
        Upstream(stable, "m-00001"), Upstream(canary, "m-00002"), canary_percent=25, service="m"
    ) as router:
        seen = Counter(_post(f"{router.url}/v1/models/m:predict")[1]["who"] for _ in range(40))
        assert seen == {"stable": 30, "canary": 10}
        router.set_percent(0)
        assert {_post(f"{router.url}/v1/models/m:predict")[1]["who"] for _ in range(5)} == {"stable"}
        samples = _samples(router)
    assert samples[("revision_app_request_count", "m-00002", "2xx")] == 10
    assert samples[("revision_app_request_count", "m-00001", "2xx")] == 35
    assert samples[("revision_app_request_latencies_count", "m-00002", "2xx")] == 10
    # Error series exist at 0 from the start, so the first error shows in increase().
    assert samples[("revision_app_request_count", "m-00002", "5xx")] == 0


def test_the_router_takes_its_share_over_http_and_refuses_a_bad_one(upstreams: tuple[str, str]) -> None:
    stable, canary = upstreams
    with Router(Upstream(stable, "a"), Upstream(canary, "b")) as router:
        request = urllib.request.Request(f"{router.url}/-/canary", data=b'{"percent": 50}', method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert json.load(answer) == {"percent": 50}
        assert router.percent == 50
        request = urllib.request.Request(f"{router.url}/-/canary", data=b'{"percent": 150}', method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310
        assert refused.value.code == 400 and router.percent == 50


def test_an_unreachable_upstream_is_a_counted_5xx(upstreams: tuple[str, str], tmp_path: Path) -> None:
    stable, _ = upstreams
    with Router(Upstream(stable, "a"), Upstream("http://127.0.0.1:9", "dead"), canary_percent=100) as router:
        code, body = _post(f"{router.url}/v1/models/m:predict")
        assert code == 502 and "dead" in body["error"]
        assert _samples(router)[("revision_app_request_count", "dead", "5xx")] == 1


T = Thresholds(
    max_error_rate=0.01, max_extra_error_rate=0.01, max_p95_ratio=1.5, max_p95_extra_ms=100, min_requests=50
)


def _stats(requests: float, errors: float, p95: float | None) -> RevisionStats:
    return RevisionStats("r", requests, errors, p95)


@pytest.mark.parametrize(
    ("canary", "stable", "outcome", "words"),
    [
        (_stats(200, 0, 20), _stats(2000, 0, 18), "ok", "canary 0.00% errors"),
        (_stats(200, 10, 20), _stats(2000, 0, 18), "breach", "error rate 5.00%"),
        # Stable fails as much: the canary is not the cause.
        (_stats(200, 10, 20), _stats(2000, 100, 18), "ok", "stable 5.00%"),
        (_stats(200, 0, 320), _stats(2000, 0, 20), "breach", "p95 320 ms"),
        # Twice as slow but only 6 ms more: no alarm.
        (_stats(200, 0, 12), _stats(2000, 0, 6), "ok", ""),
        # 150 ms more but under the ratio: no alarm.
        (_stats(200, 0, 900), _stats(2000, 0, 750), "ok", ""),
        (_stats(20, 5, 900), _stats(2000, 0, 10), "too_little", "canary had 20 requests"),
        (_stats(200, 0, 20), _stats(10, 0, 10), "too_little", "stable had 10 requests"),
        # Errors judged on the absolute limit even when stable has too little traffic.
        (_stats(200, 10, 20), _stats(10, 0, 10), "breach", "error rate"),
    ],
)
def test_verdicts(canary: RevisionStats, stable: RevisionStats, outcome: str, words: str) -> None:
    verdict = judge(canary, stable, T)
    assert verdict.outcome == outcome, verdict.reason
    assert words in verdict.reason


def test_steps_and_durations_parse_or_say_why() -> None:
    assert parse_steps("5,25,50,100") == [5, 25, 50, 100]
    assert parse_steps("10,50") == [10, 50, 100]
    for bad in ("50,25", "0,50", "5,120", "a,b", ""):
        with pytest.raises(ParameterError):
            parse_steps(bad)
    assert parse_seconds("60s") == 60 and parse_seconds("2m") == 120 and parse_seconds("1.5") == 1.5
    with pytest.raises(ParameterError):
        parse_seconds("soon")


def test_queries_fill_in_the_revision_and_window() -> None:
    q = Queries()
    assert q.render(q.errors, "m-00002", 4.6) == (
        'sum(increase(revision_app_request_count{revision_name="m-00002",response_code_class="5xx"}[5s]))'
    )


def test_a_rollout_is_kept_in_lineage_and_rewritten_as_it_goes(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    rollout = Rollout("penguins", canary_version=4, stable_version=3, started_at=100.0)
    first = save(store, rollout)
    rollout.steps.append(Step(5, 100.0, 160.0, "promote", 0.0, 0.0, 12.0, 11.0, 300, 5000, "held"))
    rollout.steps.append(Step(25, 160.0, 170.0, "rollback", 0.05, 0.0, 12.0, 11.0, 80, 240, "error rate"))
    rollout.state, rollout.reason, rollout.finished_at = "rolled_back", "at 25%: error rate", 170.0
    assert save(store, rollout) == first, "the same execution is rewritten, not a second one"
    [back] = rollouts_of(store, "penguins")
    assert back.state == "rolled_back" and back.reason == "at 25%: error rate"
    assert [(s.percent, s.decision, s.canary_error_rate) for s in back.steps] == [
        (5, "promote", 0.0),
        (25, "rollback", 0.05),
    ]
    assert rollouts_of(store, "penguins", 4) and rollouts_of(store, "penguins", 3)
    assert rollouts_of(store, "penguins", 9) == [] and rollouts_of(store, "other") == []
    rollout.state = "finished"
    with pytest.raises(ValueError, match="state"):
        save(store, rollout)


def test_audit_and_pushes_show_the_rollouts(tmp_path: Path, recorded_push: Any) -> None:
    from click.testing import CliRunner

    from kubetfx.cli import cli

    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    store = connect(url)
    for version in (1, 2):
        recorded_push(store, tmp_path, version)
    rollout = Rollout("penguins", canary_version=2, stable_version=1, started_at=1_700_000_000.0)
    rollout.steps.append(
        Step(5, 1_700_000_000.0, 1_700_000_060.0, "promote", 0.0, 0.0, 12.0, 11.0, 300, 5000, "held")
    )
    rollout.steps.append(
        Step(
            25, 1_700_000_060.0, 1_700_000_075.0, "rollback", 0.05, 0.0, 12.0, 11.0, 80, 240, "error rate 5%"
        )
    )
    rollout.state, rollout.reason, rollout.finished_at = (
        "rolled_back",
        "at 25%: error rate 5%",
        1_700_000_075.0,
    )
    save(store, rollout)

    runner = CliRunner()
    audit = runner.invoke(cli, ["audit", "penguins:2", "--metadata", url])
    assert audit.exit_code == 0, audit.output
    section = audit.output.split("## Canary rollouts", 1)[1].split("##", 1)[0]
    assert "rollout 1 -> 2 (this version: canary)" in section
    assert "rolled_back: at 25%: error rate 5%" in section
    assert "at 5%: promote" in section and "at 25%: rollback" in section
    stable = runner.invoke(cli, ["audit", "penguins:1", "--metadata", url])
    assert "rollout 1 -> 2 (this version: stable)" in stable.output

    pushes = runner.invoke(cli, ["lineage", "pushes", "penguins", "--metadata", url])
    assert pushes.exit_code == 0, pushes.output
    [row2] = [line for line in pushes.output.splitlines() if line.startswith("penguins:2")]
    [row1] = [line for line in pushes.output.splitlines() if line.startswith("penguins:1")]
    assert "rolled back at 25% (from 1)" in row2 and "rolled back" not in row1


def test_a_rollout_that_cannot_read_its_metrics_moves_traffic_back(
    upstreams: tuple[str, str], tmp_path: Path
) -> None:
    """Prometheus unreachable mid-rollout: the canary is not left half-way unwatched."""
    import socket

    from kubetfx.serving.prometheus import Prometheus
    from kubetfx.serving.rollout import RolloutSettings, RouterBackend, run_rollout

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    stable, canary = upstreams
    with Router(Upstream(stable, "m-00001"), Upstream(canary, "m-00002")) as router:
        rollout = run_rollout(
            RouterBackend(router.url, "m-00001", "m-00002"),
            Prometheus(f"http://127.0.0.1:{dead}", timeout=2),
            model_name="penguins",
            canary_version=2,
            stable_version=1,
            settings=RolloutSettings(window_s=1, interval_s=0.1),
            store=store,
            say=lambda _: None,
        )
        assert router.percent == 0
    assert rollout.state == "rolled_back" and "PrometheusError" in rollout.reason
    assert "traffic moved back to the stable version" in rollout.reason
    assert rollouts_of(store, "penguins")[0].state == "rolled_back"
