"""The serving check's figures as Prometheus samples: p50, p95 and p99 of the load."""

from __future__ import annotations

import pytest

from kubetfx.artifacts.kinds import PUSHED_MODEL, TYPE_KEY
from kubetfx.metrics import task_samples


def test_the_check_quantiles_are_exported() -> None:
    pushed = {
        TYPE_KEY: PUSHED_MODEL,
        "pushed": 1,
        "version": 2,
        "model_name": "penguins",
        "serving_server": "kserve 0.15.2",
        "latency_p50_ms": 52.0,
        "latency_p95_ms": 85.5,
        "latency_p99_ms": 106.0,
    }
    samples = task_samples(succeeded=True, seconds=1.0, ended=1.0, outputs=[pushed])
    latency = samples.values["kubetfx_serving_check_latency_seconds"]
    assert latency == {
        (("quantile", "0.5"),): pytest.approx(0.052),
        (("quantile", "0.95"),): pytest.approx(0.0855),
        (("quantile", "0.99"),): pytest.approx(0.106),
    }
