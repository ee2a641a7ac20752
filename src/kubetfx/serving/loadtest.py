"""A bounded load on a model server: N requests at a fixed concurrency, and their latencies.

:func:`run_load` sends ``requests`` POSTs (JSON bodies taken in turn from ``payloads``)
from ``concurrency`` asyncio workers over one httpx connection pool, after a short warm-up
that is not counted, and reports p50/p95/p99 latency over the answered requests, the error
count (non-2xx answers, timeouts, connection failures), the elapsed time and the rate.
Per-request latencies are not kept.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kubetfx.errors import ParameterError


@dataclass(frozen=True)
class LoadResult:
    """What a load measured. Latencies in milliseconds, over the answered (2xx) requests."""

    requests: int
    concurrency: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    error_samples: tuple[str, ...] = ()

    @property
    def error_rate(self) -> float:
        """Errors over requests."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        """Requests sent per second of the load."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-able values."""
        out = asdict(self)
        out["error_samples"] = list(self.error_samples)
        out["error_rate"] = self.error_rate
        out["requests_per_second"] = self.requests_per_second
        return out


def percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95, p99 (linear interpolation between order statistics, as numpy's default)."""
    if not values:
        return (float("nan"),) * 3
    if len(values) == 1:
        return (values[0],) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def run_load(
    url: str,
    payloads: Sequence[Any],
    *,
    requests: int = 2000,
    concurrency: int = 8,
    timeout: float = 10.0,
    warmup: int | None = None,
) -> LoadResult:
    """POST ``requests`` JSON bodies to ``url`` from ``concurrency`` workers; see the module doc.

    Args:
        url: The endpoint (e.g. ``RunningServer.predict_url``).
        payloads: JSON bodies, sent in turn (request i sends ``payloads[i % len]``).
        requests: Requests counted.
        concurrency: Requests in flight at once.
        timeout: Seconds before one request counts as an error.
        warmup: Requests sent first and not counted (default: twice the concurrency).

    Raises:
        ParameterError: No payloads, or a count below 1.
    """
    if not payloads:
        raise ParameterError("run_load: no payloads to send")
    if requests < 1 or concurrency < 1:
        raise ParameterError(
            f"run_load: requests ({requests}) and concurrency ({concurrency}) must be at least 1"
        )
    if timeout <= 0:
        raise ParameterError(f"run_load: timeout {timeout} must be positive")
    return asyncio.run(
        _load(url, payloads, requests, concurrency, timeout, 2 * concurrency if warmup is None else warmup)
    )


async def _load(
    url: str, payloads: Sequence[Any], requests: int, concurrency: int, timeout: float, warmup: int
) -> LoadResult:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(i: int, counted: bool) -> None:
            nonlocal errors
            started = time.perf_counter()
            problem = ""
            try:
                answer = await client.post(url, json=payloads[i % len(payloads)])
                if not answer.is_success:
                    problem = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {str(err)[:200]}"
            elapsed = (time.perf_counter() - started) * 1000.0
            if not counted:
                return
            if problem:
                errors += 1
                if len(samples) < 3:
                    samples.append(problem)
            else:
                latencies.append(elapsed)

        async def worker(queue: asyncio.Queue[int], counted: bool) -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one(i, counted)

        async def phase(count: int, counted: bool) -> None:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(count):
                queue.put_nowait(i)
            await asyncio.gather(*(worker(queue, counted) for _ in range(min(concurrency, count))))

        if warmup > 0:
            await phase(warmup, counted=False)
        started = time.perf_counter()
        await phase(requests, counted=True)
        seconds = time.perf_counter() - started
    p50, p95, p99 = percentiles(latencies)
    return LoadResult(
        requests=requests,
        concurrency=concurrency,
        errors=errors,
        seconds=seconds,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=statistics.fmean(latencies) if latencies else float("nan"),
        max_ms=max(latencies) if latencies else float("nan"),
        error_samples=tuple(samples),
    )
