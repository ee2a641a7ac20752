"""Stepped canary rollouts end to end on loopback: real KServe model servers, the router
stand-in for the traffic split, a real Prometheus, real requests, lineage in ML Metadata.

A healthy canary reaches 100%; a canary failing 5% of its requests, or 300 ms slower, is
rolled back, and the time from the fault's start to the decision is printed (what bounds
it: Prometheus's scrape interval + the controller's interval + the analysis window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from kubetfx.lineage.aliases import aliases
from kubetfx.lineage.rollouts import rollouts_of
from kubetfx.serving.prometheus import Prometheus
from kubetfx.serving.rollout import RolloutSettings, RouterBackend, Thresholds, run_rollout

MODEL_NAME = "penguins"  # what the rig (conftest.py) serves and records
STABLE, CANARY = 1, 2
REVISIONS = {STABLE: "penguins-predictor-00001", CANARY: "penguins-predictor-00002"}
SCRAPE_INTERVAL_S = 1
WINDOW_S = 5.0
INTERVAL_S = 1.0
SETTINGS = RolloutSettings(
    steps=(5, 25, 50, 100),
    window_s=WINDOW_S,
    interval_s=INTERVAL_S,
    max_holds=4,
    # Identical model servers on a shared machine: latency noise must not read as a
    # regression, while the injected 300 ms must.
    thresholds=Thresholds(min_requests=10, max_p95_ratio=1.5, max_p95_extra_ms=150.0),
)


def _rollout(rig: Any, on_message: Callable[[str], None] | None = None) -> object:
    messages: list[str] = []

    def say(message: str) -> None:
        messages.append(message)
        print(message)
        if on_message is not None:
            on_message(message)

    backend = RouterBackend(rig.router.url, REVISIONS[STABLE], REVISIONS[CANARY])
    return run_rollout(
        backend,
        Prometheus(rig.prometheus.url),
        model_name=MODEL_NAME,
        canary_version=CANARY,
        stable_version=STABLE,
        settings=SETTINGS,
        store=rig.store,
        say=say,
    )


def test_a_healthy_canary_reaches_all_traffic(rig: Any) -> None:
    rollout = _rollout(rig)
    assert rollout.state == "promoted", rollout.reason  # type: ignore[attr-defined]
    assert rig.router.percent == 100
    steps = rollout.steps  # type: ignore[attr-defined]
    # Every step below 100 was judged on real traffic of both revisions, then passed.
    judged = [s for s in steps if s.decision == "promote" and s.percent < 100]
    assert [s.percent for s in judged] == [5, 25, 50]
    for step in judged:
        assert step.canary_requests >= 10 and step.stable_requests >= 10
        assert step.canary_error_rate == 0.0 and step.stable_error_rate == 0.0
        assert step.canary_p95_ms is not None and step.stable_p95_ms is not None
    assert steps[-1].percent == 100 and steps[-1].decision == "promote"
    # Lineage holds the same, and the aliases moved.
    [recorded] = rollouts_of(rig.store, MODEL_NAME, CANARY)
    assert recorded.state == "promoted" and recorded.stable_version == STABLE
    assert [s.decision for s in recorded.steps] == [s.decision for s in steps]
    assert aliases(rig.store, MODEL_NAME) == {"production": CANARY, "candidate": CANARY}
    assert rig.load.statuses[200] > 0 and set(rig.load.statuses) == {200}


def _fault_rollout(rig: Any, switch_on: Callable[[], None]) -> tuple[object, float]:
    """Run a rollout with a fault switched on when the 25% step starts; returns the
    rollout and the seconds from the fault's start to the rollback decision."""
    decided: list[float] = []

    def on_message(message: str) -> None:
        if message.startswith("step 2/"):
            switch_on()
        if message.startswith("rolled back"):
            decided.append(time.monotonic())

    rollout = _rollout(rig, on_message)
    assert rig.hop.started is not None, "the fault was never switched on"
    assert decided, f"no rollback: {rollout.state} {rollout.reason}"  # type: ignore[attr-defined]
    return rollout, decided[0] - rig.hop.started


def test_a_canary_failing_5_percent_of_requests_is_rolled_back(rig: Any) -> None:
    rollout, seconds = _fault_rollout(rig, lambda: rig.hop.fail_every(20))
    print(
        f"\nfault (5% errors) to rollback decision: {seconds:.1f} s "
        f"(bound: scrape {SCRAPE_INTERVAL_S} s + interval {INTERVAL_S:g} s + window {WINDOW_S:g} s)"
    )
    assert rollout.state == "rolled_back"  # type: ignore[attr-defined]
    last = rollout.steps[-1]  # type: ignore[attr-defined]
    assert last.decision == "rollback" and last.percent >= 25
    assert "error rate" in last.reason and last.canary_error_rate > 0.01
    assert last.stable_error_rate == 0.0
    assert rig.router.percent == 0, "traffic is back on the stable revision"
    # The 5% step passed before the fault.
    assert rollout.steps[0].percent == 5 and rollout.steps[0].decision == "promote"  # type: ignore[attr-defined]
    [recorded] = rollouts_of(rig.store, MODEL_NAME, CANARY)
    assert recorded.state == "rolled_back" and "error rate" in recorded.reason
    assert aliases(rig.store, MODEL_NAME) == {"production": STABLE, "candidate": CANARY}
    assert rig.load.statuses[500] > 0  # the fault reached clients: real failed requests


@pytest.mark.slow
def test_a_canary_300_ms_slower_is_rolled_back(rig: Any) -> None:
    rollout, seconds = _fault_rollout(rig, lambda: rig.hop.delay(0.3))
    print(
        f"\nfault (+300 ms) to rollback decision: {seconds:.1f} s "
        f"(bound: scrape {SCRAPE_INTERVAL_S} s + interval {INTERVAL_S:g} s + window {WINDOW_S:g} s)"
    )
    assert rollout.state == "rolled_back"  # type: ignore[attr-defined]
    last = rollout.steps[-1]  # type: ignore[attr-defined]
    assert last.decision == "rollback" and "p95" in last.reason
    assert last.canary_p95_ms - last.stable_p95_ms > 150
    assert rig.router.percent == 0
    assert rollouts_of(rig.store, MODEL_NAME, CANARY)[0].state == "rolled_back"
    assert aliases(rig.store, MODEL_NAME)["production"] == STABLE
