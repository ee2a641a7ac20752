"""A stepped canary rollout with automatic rollback, judged on Prometheus metrics.

:func:`run_rollout` moves a canary through traffic steps (default 5 -> 25 -> 50 -> 100
percent). At each step it asks Prometheus every ``interval`` seconds for the canary's and
the stable revision's requests, 5xx errors and p95 latency over the last ``window``
seconds (:mod:`kubetfx.serving.prometheus`) and compares them with :class:`Thresholds`:

* **errors**: the canary's error rate is over ``max_error_rate`` *and* over the stable
  revision's by more than ``max_extra_error_rate`` (the stable's rate unknown: the
  absolute limit alone);
* **latency**: the canary's p95 is over ``max_p95_ratio`` times the stable's *and* more than
  ``max_p95_extra_ms`` above it (both, so that 4 ms against 2 ms is no alarm).

A breach with at least ``min_requests`` canary requests in the window rolls back at once,
without waiting for the window to end: the canary's traffic share goes to 0, the rollout
is recorded ``rolled_back`` with the figures and the reason, and
``kubetfx_rollout_rolled_back`` (an alert fires on it) is pushed to the Pushgateway. A
step *passes* when a whole window has gone by without a breach and both revisions had at
least ``min_requests`` requests in it; with less traffic than that nothing is decided (a
``hold``, with the counts, is recorded) and the step waits another window, at most
``max_holds`` times, then rolls back because the canary could not be judged. Passing the
last step below 100 promotes the canary (100 percent).

How long a fault takes to be caught, from its start: Prometheus sees it one scrape
interval later, the controller asks every ``interval`` seconds, and the window must hold
enough faulty requests for the breach to show over the healthy ones before the fault; at
worst a whole ``window`` (then every request in it is faulty). So ``scrape interval +
interval + window`` bounds it, given ``min_requests`` canary requests per window.

The traffic is moved by a :class:`TrafficBackend`: :class:`KServeBackend` patches a KServe
InferenceService (Serverless mode) through the Kubernetes API; :class:`RouterBackend`
drives the loopback stand-in :class:`~kubetfx.serving.router.Router`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubetfx.errors import KubetfxError, ParameterError
from kubetfx.serving.prometheus import Prometheus, RevisionStats

log = logging.getLogger(__name__)

DEFAULT_STEPS = (5, 25, 50, 100)
METRICS_PIPELINE = "kubetfx-rollout"  # the Pushgateway group's pipeline key for rollouts
METRICS_TASK = "rollout"


class RolloutError(KubetfxError):
    """A rollout cannot start or its traffic cannot be moved."""


@dataclass(frozen=True)
class Thresholds:
    """When a canary is worse than its stable revision."""

    max_error_rate: float = 0.01
    max_extra_error_rate: float = 0.01
    max_p95_ratio: float = 1.5
    max_p95_extra_ms: float = 100.0
    min_requests: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1 or not 0 <= self.max_extra_error_rate <= 1:
            raise ParameterError("error-rate thresholds are fractions within 0-1")
        if self.max_p95_ratio < 1 or self.max_p95_extra_ms < 0:
            raise ParameterError("max_p95_ratio must be >= 1 and max_p95_extra_ms >= 0")
        if self.min_requests < 1:
            raise ParameterError("min_requests must be at least 1")


@dataclass(frozen=True)
class Verdict:
    """What one look at the metrics says: ``ok``, ``breach`` or ``too_little`` traffic."""

    outcome: str
    reason: str


def parse_steps(text: str | Sequence[int]) -> list[int]:
    """``"5,25,50,100"`` -> [5, 25, 50, 100]; increasing, within 1-100, ending at 100."""
    try:
        steps = [int(s) for s in text.split(",")] if isinstance(text, str) else [int(s) for s in text]
    except ValueError as err:
        raise ParameterError(f"steps must be comma-separated percentages, not {text!r}") from err
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ParameterError(f"steps must be increasing percentages within 1-100, not {text!r}")
    if steps[-1] != 100:
        steps.append(100)
    return steps


def parse_seconds(text: str | float, *, allow_zero: bool = False) -> float:
    """``"60s"``, ``"2m"``, ``"1.5"`` -> seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        raw = text.strip()
        unit = next((u for u in ("ms", "s", "m", "h") if raw.endswith(u)), "")
        try:
            seconds = float(raw[: len(raw) - len(unit)]) * units.get(unit, 1.0)
        except ValueError as err:
            raise ParameterError(f"a duration is a number with s, m or h, not {text!r}") from err
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ParameterError(f"a duration must be positive, not {text!r}")
    return seconds


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def judge(canary: RevisionStats, stable: RevisionStats, t: Thresholds) -> Verdict:
    """Compare one window of canary and stable traffic."""
    if canary.requests < t.min_requests:
        return Verdict(
            "too_little", f"canary had {canary.requests:.0f} requests (< {t.min_requests}) in the window"
        )
    stable_known = stable.requests >= t.min_requests
    c_err, s_err = canary.error_rate or 0.0, stable.error_rate if stable_known else None
    limit = t.max_error_rate if s_err is None else max(t.max_error_rate, s_err + t.max_extra_error_rate)
    if c_err > limit:
        return Verdict(
            "breach",
            f"canary error rate {_pct(c_err)} over {_pct(limit)} "
            f"(stable {_pct(s_err)}; {canary.errors:.0f} of {canary.requests:.0f} requests failed)",
        )
    if stable_known and canary.p95_ms is not None and stable.p95_ms is not None:
        over_ratio = canary.p95_ms > stable.p95_ms * t.max_p95_ratio
        over_extra = canary.p95_ms - stable.p95_ms > t.max_p95_extra_ms
        if over_ratio and over_extra:
            return Verdict(
                "breach",
                f"canary p95 {_ms(canary.p95_ms)} against stable {_ms(stable.p95_ms)}: over "
                f"{t.max_p95_ratio:g}x and more than {t.max_p95_extra_ms:g} ms slower",
            )
    if not stable_known:
        return Verdict(
            "too_little", f"stable had {stable.requests:.0f} requests (< {t.min_requests}) to compare with"
        )
    return Verdict(
        "ok",
        f"canary {_pct(c_err)} errors, p95 {_ms(canary.p95_ms)}; "
        f"stable {_pct(s_err)}, p95 {_ms(stable.p95_ms)}",
    )


# ---------------------------------------------------------------------- traffic backends


class TrafficBackend(Protocol):
    """What moves traffic between the stable and the canary revision."""

    def revisions(self) -> tuple[str, str]:
        """(stable revision name, canary revision name) as Prometheus labels them."""

    def set_canary_percent(self, percent: int) -> None:
        """Send ``percent`` of the traffic to the canary."""

    def promote(self) -> None:
        """The canary takes all traffic and becomes the stable revision."""

    def rollback(self) -> None:
        """All traffic back to the stable revision."""


class RouterBackend:
    """Moves traffic on the loopback stand-in router through its ``/-/canary`` endpoint."""

    def __init__(
        self, router_url: str, stable_revision: str, canary_revision: str, timeout: float = 10.0
    ) -> None:
        if not router_url.startswith(("http://", "https://")):
            raise ParameterError(f"router URL must start with http:// or https://, not {router_url!r}")
        self.url = router_url.rstrip("/")
        self.names = (stable_revision, canary_revision)
        self.timeout = timeout

    def revisions(self) -> tuple[str, str]:
        return self.names

    def set_canary_percent(self, percent: int) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            f"{self.url}/-/canary",
            data=json.dumps({"percent": int(percent)}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.load(response)
        except OSError as err:
            raise RolloutError(
                f"the router at {self.url} did not take canary share {percent}: {err}"
            ) from err
        if int(answer.get("percent", -1)) != int(percent):
            raise RolloutError(f"the router at {self.url} answered {answer} to canary share {percent}")

    def promote(self) -> None:
        self.set_canary_percent(100)

    def rollback(self) -> None:
        self.set_canary_percent(0)


class KServeBackend:
    """Moves traffic of a KServe InferenceService in Serverless (Knative) mode.

    Starting the canary patches the predictor to the canary's version folder with
    ``canaryTrafficPercent`` (KServe starts a new revision and splits traffic between it
    and the last rolled-out one); each step patches ``canaryTrafficPercent``; promotion
    sets 100; rollback sets 0, which KServe answers by pinning all traffic to the last
    rolled-out revision (the spec keeps naming the canary's version at 0 percent until
    the next rollout replaces it). Revision names come from the InferenceService's
    ``status.components.predictor`` (``latestRolledoutRevision`` is the stable one,
    ``latestCreatedRevision`` the canary).

    Uses the ``kubernetes`` client (kfp depends on it) with the in-cluster configuration,
    else the local kubeconfig. Not exercised against a cluster by kubetfx's tests.
    """

    GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"

    def __init__(
        self,
        name: str,
        namespace: str,
        push_root: str,
        canary_version: int,
        *,
        ready_timeout: float = 600.0,
        poll: float = 5.0,
        api: Any = None,
    ) -> None:
        self.name, self.namespace, self.push_root = name, namespace, push_root
        self.canary_version = int(canary_version)
        self.ready_timeout, self.poll = ready_timeout, poll
        self._api = api
        self._names: tuple[str, str] | None = None

    def _custom(self) -> Any:
        if self._api is None:
            from kubernetes import client, config  # type: ignore[import-untyped]

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.CustomObjectsApi()
        return self._api

    def _get(self) -> dict[str, Any]:
        result: dict[str, Any] = self._custom().get_namespaced_custom_object(
            self.GROUP, self.VERSION, self.namespace, self.PLURAL, self.name
        )
        return result

    def _patch(self, body: dict[str, Any]) -> None:
        self._custom().patch_namespaced_custom_object(
            self.GROUP, self.VERSION, self.namespace, self.PLURAL, self.name, body
        )

    def served(self) -> int | None:
        """The version the InferenceService's spec pins now (None: not pinned by kubetfx)."""
        from kubetfx.serving.inferenceservice import served_version

        return served_version(self._get())

    def start(self, first_percent: int) -> None:
        """Point the predictor at the canary's version with ``first_percent`` of traffic
        and wait until KServe reports the new revision ready."""
        from kubetfx.serving.inferenceservice import (
            MODEL_MOUNT,
            ROLLOUT_ANNOTATION,
            VERSION_LABEL,
            version_uri,
        )

        before = ((self._get().get("status") or {}).get("components") or {}).get("predictor") or {}
        stable = str(before.get("latestRolledoutRevision") or "")
        if not stable:
            raise RolloutError(
                f"InferenceService {self.namespace}/{self.name} has no rolled-out revision to compare with"
            )
        version = self.canary_version
        self._patch(
            {
                "spec": {
                    "predictor": {
                        "canaryTrafficPercent": int(first_percent),
                        "labels": {VERSION_LABEL: str(version)},
                        "annotations": {ROLLOUT_ANNOTATION: str(version)},
                        "storageUris": [
                            {
                                "uri": version_uri(self.push_root, self.name, version),
                                "mountPath": f"{MODEL_MOUNT}/{version}",
                            }
                        ],
                    }
                }
            }
        )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            predictor = ((self._get().get("status") or {}).get("components") or {}).get("predictor") or {}
            created = str(predictor.get("latestCreatedRevision") or "")
            ready = str(predictor.get("latestReadyRevision") or "")
            if created and created != stable and ready == created:
                self._names = (stable, created)
                return
            time.sleep(self.poll)
        raise RolloutError(
            f"the canary revision of {self.namespace}/{self.name} was not ready "
            f"within {self.ready_timeout:.0f} s"
        )

    def revisions(self) -> tuple[str, str]:
        if self._names is None:
            raise RolloutError("the KServe canary has not been started")
        return self._names

    def set_canary_percent(self, percent: int) -> None:
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": int(percent)}}})

    def promote(self) -> None:
        self.set_canary_percent(100)

    def rollback(self) -> None:
        self.set_canary_percent(0)


# ---------------------------------------------------------------------- the controller


@dataclass
class RolloutSettings:
    """How a rollout proceeds."""

    steps: Sequence[int] = DEFAULT_STEPS
    window_s: float = 60.0
    interval_s: float = 10.0
    max_holds: int = 3
    thresholds: Thresholds = Thresholds()
    # Seconds of canary traffic at the first step that are not judged: a new revision's
    # first requests load and trace the model (hundreds of ms), which is no regression.
    warmup_s: float = 0.0

    def __post_init__(self) -> None:
        self.steps = parse_steps(self.steps)
        if self.window_s <= 0 or self.interval_s <= 0:
            raise ParameterError("window and interval must be positive")
        if self.max_holds < 0:
            raise ParameterError("max_holds must be >= 0")
        if self.warmup_s < 0:
            raise ParameterError("warmup must be >= 0")


def _push_metrics(model_name: str, canary_version: int, stable_version: int, percent: int, state: str) -> str:
    from kubetfx.metrics import Samples, grouping_key, push

    samples = Samples()
    samples.add("kubetfx_rollout_canary_percent", percent)
    samples.add("kubetfx_rollout_canary_version", canary_version)
    samples.add("kubetfx_rollout_stable_version", stable_version)
    samples.add("kubetfx_rollout_rolled_back", 1 if state == "rolled_back" else 0)
    samples.add("kubetfx_rollout_decision_timestamp_seconds", time.time())
    return push(samples, grouping_key(METRICS_PIPELINE, METRICS_TASK, model_name))


def _move_alias(
    store: Any, model_name: str, version: int, alias: str, reason: str, say: Callable[[str], None]
) -> None:
    """Point ``alias`` at ``version`` in lineage (unless it already does); a version
    lineage holds no push of cannot take an alias: say so, and go on."""
    import getpass

    from kubetfx.lineage.aliases import AliasError, aliases, assign_alias

    if aliases(store, model_name).get(alias) == version:
        return
    try:
        assign_alias(
            store, model_name, version, alias, reason=reason, actor=f"kubetfx rollout ({getpass.getuser()})"
        )
    except AliasError as err:
        say(f"warning: alias {alias!r} not moved: {err}")
        return
    say(f"alias {alias!r} -> version {version}")


def _step(
    percent: int, started: float, canary: RevisionStats, stable: RevisionStats, decision: str, reason: str
) -> Any:
    from kubetfx.lineage.rollouts import Step

    return Step(
        percent=percent,
        started_at=started,
        decided_at=time.time(),
        decision=decision,
        canary_error_rate=canary.error_rate,
        stable_error_rate=stable.error_rate,
        canary_p95_ms=canary.p95_ms,
        stable_p95_ms=stable.p95_ms,
        canary_requests=canary.requests,
        stable_requests=stable.requests,
        reason=reason,
    )


def run_rollout(
    backend: TrafficBackend,
    prometheus: Prometheus,
    *,
    model_name: str,
    canary_version: int,
    stable_version: int,
    settings: RolloutSettings | None = None,
    store: Any = None,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Move the canary through ``settings.steps``; returns the :class:`~kubetfx.lineage.rollouts.Rollout`.

    ``store`` (a :class:`~kubetfx.lineage.store.Store`) records the rollout and moves the
    ``candidate`` and ``production`` aliases; None records nothing (a dry run).
    """
    from kubetfx.lineage.rollouts import Rollout, Step, save

    settings = settings or RolloutSettings()
    t = settings.thresholds
    say = say or log.info
    rollout = Rollout(model_name, int(canary_version), int(stable_version), started_at=time.time())

    def record() -> None:
        if store is not None:
            save(store, rollout)

    def finish(state: str, reason: str, percent: int) -> Rollout:
        rollout.state, rollout.reason, rollout.finished_at = state, reason, time.time()
        record()
        if store is not None:
            if state == "promoted":
                _move_alias(
                    store, model_name, canary_version, "production", f"canary promoted: {reason}", say
                )
            else:
                _move_alias(
                    store, model_name, stable_version, "production", f"canary rolled back: {reason}", say
                )
        problem = _push_metrics(model_name, canary_version, stable_version, percent, state)
        if problem:
            say(f"warning: {problem}")
        say(f"{state.replace('_', ' ')}: {reason}")
        return rollout

    record()
    if store is not None:
        _move_alias(store, model_name, canary_version, "candidate", "canary started", say)
    try:
        stable_rev, canary_rev = backend.revisions()
        steps = list(settings.steps)
        for index, percent in enumerate(steps):
            started = time.time()
            if percent >= 100:
                backend.promote()
                rollout.steps.append(
                    Step(percent, started, time.time(), "promote", reason="every step below 100% held")
                )
                return finish("promoted", f"canary version {canary_version} serves all traffic", 100)
            backend.set_canary_percent(percent)
            _push_metrics(model_name, canary_version, stable_version, percent, "in_progress")
            say(
                f"step {index + 1}/{len(steps)}: canary {percent}% of traffic, window {settings.window_s:g} s"
            )
            if index == 0 and settings.warmup_s:
                say(f"  warm-up: the canary's first {settings.warmup_s:g} s of traffic are not judged")
                sleep(settings.warmup_s)
            step_start = time.monotonic()
            holds = 0
            while True:
                sleep(settings.interval_s)
                elapsed = time.monotonic() - step_start
                lookback = min(elapsed, settings.window_s)
                canary = prometheus.revision(canary_rev, lookback)
                stable = prometheus.revision(stable_rev, lookback)
                verdict = judge(canary, stable, t)

                if verdict.outcome == "breach":
                    backend.rollback()
                    rollout.steps.append(_step(percent, started, canary, stable, "rollback", verdict.reason))
                    return finish("rolled_back", f"at {percent}%: {verdict.reason}", 0)
                if elapsed < settings.window_s * (holds + 1):
                    continue
                if verdict.outcome == "ok":
                    rollout.steps.append(_step(percent, started, canary, stable, "promote", verdict.reason))
                    record()
                    say(f"  held at {percent}%: {verdict.reason}")
                    break
                holds += 1
                rollout.steps.append(
                    _step(percent, started, canary, stable, "hold", f"no decision: {verdict.reason}")
                )
                record()
                say(f"  no decision at {percent}%: {verdict.reason}")
                if holds > settings.max_holds:
                    backend.rollback()
                    return finish(
                        "rolled_back",
                        f"at {percent}%: too little traffic to judge the canary in {holds} windows "
                        f"({verdict.reason})",
                        0,
                    )
    except BaseException as err:
        # Whatever stops the controller (Prometheus unreachable, the API refusing a patch,
        # Ctrl-C) must not leave a canary half-way with nobody watching it.
        if rollout.state != "in_progress":
            raise  # decided already; only recording it failed
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        moved = "traffic moved back to the stable version"
        try:
            backend.rollback()
        except Exception as undo:  # noqa: BLE001 - said, and the first error is raised
            moved = f"traffic could NOT be moved back to the stable version ({undo})"
            say(f"warning: {moved}")
        finish("rolled_back", f"the rollout stopped: {why}; {moved}", 0)
        if isinstance(err, KubetfxError):
            return rollout
        raise
    raise AssertionError("steps end at 100")  # parse_steps guarantees it
