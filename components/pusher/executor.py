"""Pusher: publishes a blessed model for serving, once it has shown that it serves.

1. The blessing is read here, not trusted from the pipeline: without a ``BLESSED`` file
   (or with a ``NOT_BLESSED`` one) nothing is pushed, and the task still succeeds with
   ``pushed=False`` and the reasons, so a pipeline that calls the Pusher without a
   condition is still safe.
2. The serving check (``kubetfx.components.serving_check``): the model served by KServe's
   Python model server on loopback, its predictions on a sample of eval examples compared
   with the in-process signature's, and a bounded load measured. In the reference
   pipelines the ``serving_check`` component runs it beside the Evaluator and the Pusher
   reads its record (``serving_check_dir``); without one, the Pusher runs the same check
   itself on ``examples_dir`` (``load_requests`` at ``load_concurrency``). A model that
   does not load or answer, answers differently in the server, has load errors, or whose
   p95 is over ``latency_slo_p95_ms`` fails the task and nothing is published; so does a
   record of another model than the one to push.
3. Publishing (``kubetfx.pushing``): ``<destination>/<model_name>/<version>/``, atomic, and
   only under the allowed roots from kubetfx's settings (``KUBETFX_PUSH_ROOT``).

Layout written under ``pushed_model_dir``: ``pushed.json``, the same facts as the
PushedModel artifact's metadata.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetfx.components.serving_check.executor import check_parameters, measure
from kubetfx.components.serving_check.serving import (
    DEFAULT_TOLERANCE,
    CheckRecord,
    ServingCheck,
    ServingCheckError,
    check_metadata,
)

from kubetfx.artifacts.blessing import Blessing
from kubetfx.artifacts.kinds import PUSHED_MODEL, TYPE_KEY
from kubetfx.artifacts.layout import PUSHED_FILE
from kubetfx.artifacts.model import find_saved_model
from kubetfx.errors import ParameterError
from kubetfx.fingerprint import fingerprint_path
from kubetfx.pushing import check_model_name, model_location, publish, resolve_destination

log = logging.getLogger("kubetfx.pusher")

DEFAULT_SLO_P95_MS = 200.0


@dataclass
class PushResult:
    """What the Pusher did: the PushedModel artifact's metadata and ``pushed.json``."""

    pushed: bool
    model_name: str
    model_uri: str
    version: int = 0
    destination: str = ""  # the version folder, when pushed
    pushed_at: str = ""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    reason: str = ""  # why not pushed
    check: ServingCheck | None = None
    latency_slo_p95_ms: float = 0.0

    def metadata(self) -> dict[str, Any]:
        """PushedModel artifact metadata (lineage finds the served model by it)."""
        meta: dict[str, Any] = {
            TYPE_KEY: PUSHED_MODEL,
            "pushed": int(self.pushed),
            "model_name": self.model_name,
            "model_uri": self.model_uri,
        }
        if self.pushed:
            meta.update(version=self.version, destination=self.destination, pushed_at=self.pushed_at)
        if self.latency_p50_ms is not None:
            meta["latency_p50_ms"] = round(self.latency_p50_ms, 4)
            meta["latency_p95_ms"] = round(self.latency_p95_ms or 0.0, 4)
        if self.check is not None:
            meta.update(check_metadata(self.check, self.latency_slo_p95_ms))
        if self.reason:
            meta["reason"] = self.reason
        return meta


def judge(check: ServingCheck, where: str, slo_p95_ms: float) -> None:
    """Refuse what the check found wrong (see :func:`run`); the message holds the figures."""
    try:
        _judge(check, where, slo_p95_ms)
    except ServingCheckError as err:
        err.check, err.slo_p95_ms = check, slo_p95_ms
        raise


def _judge(check: ServingCheck, where: str, slo_p95_ms: float) -> None:
    figures = (
        f"{check.requests} requests at concurrency {check.concurrency} on {check.server}: "
        f"p50 {check.p50_ms:.3f} ms, p95 {check.p95_ms:.3f} ms, p99 {check.p99_ms:.3f} ms, "
        f"{check.errors} errors"
    )
    if check.predictions_match is False:
        raise ServingCheckError(
            f"{where}: the model server's predictions differ from the in-process signature's on the "
            f"eval sample ({check.mismatch}); not pushed"
        )
    if check.errors:
        raise ServingCheckError(
            f"{where}: {check.errors} of {check.requests} load requests failed ({figures}; e.g. "
            f"{check.error_samples[0] if check.error_samples else '-'}); not pushed"
        )
    if slo_p95_ms > 0 and check.p95_ms > slo_p95_ms:
        raise ServingCheckError(
            f"{where}: p95 latency {check.p95_ms:.3f} ms is over latency_slo_p95_ms {slo_p95_ms:g} "
            f"({figures}); not pushed (make the model faster, or raise the SLO)"
        )


def _write(pushed_model_dir: str, result: PushResult) -> None:
    os.makedirs(pushed_model_dir, exist_ok=True)
    Path(pushed_model_dir, PUSHED_FILE).write_text(json.dumps(result.metadata(), indent=1) + "\n")


def run(
    model_dir: str,
    blessing_dir: str,
    examples_dir: str,
    pushed_model_dir: str,
    *,
    model_name: str,
    allowed_roots: Sequence[str],
    push_destination: str = "",
    max_latency_ms: float = 0.0,
    sample_size: int = 100,
    model_uri: str = "",
    served: tuple[str, str] | None = None,
    latency_slo_p95_ms: float = DEFAULT_SLO_P95_MS,
    load_requests: int = 2000,
    load_concurrency: int = 8,
    serving_server: str = "auto",
    serving_protocol: str = "v1",
    tolerance: float = DEFAULT_TOLERANCE,
    serving_check_dir: str = "",
) -> PushResult:
    """Check the blessing and the model, then publish it.

    Args:
        model_dir: The Model artifact (``Format-Serving/`` SavedModel).
        blessing_dir: The ModelBlessing artifact.
        examples_dir: Examples whose eval split the serving check sends, when the Pusher
            runs it itself ("" with ``serving_check_dir``).
        pushed_model_dir: Where ``pushed.json`` goes.
        model_name: The model's folder under the destination.
        push_destination: Path or URI under an allowed root; "" for the first root; a
            relative path is taken relative to the first root.
        max_latency_ms: Deprecated name of ``latency_slo_p95_ms``: when set (> 0) it is the
            SLO, and ``latency_slo_p95_ms`` must be left at its default or equal it.
        sample_size: Eval examples whose predictions are compared (and the load sends).
        model_uri: The Model artifact's URI, for the record.
        allowed_roots: Where pushes may go: kubetfx's settings (``KUBETFX_PUSH_ROOT``), read
            once by the component's body, never from a pipeline parameter.
        served: (model URI, version folder URI) of the model being served under this
            name, from lineage: the same model already served at this destination is
            not pushed again as a new version (a rerun of an unchanged pipeline).
        latency_slo_p95_ms: Refuse the push when the load's p95 latency is over this, in
            milliseconds (0: no SLO).
        load_requests: Single-example requests in the bounded load.
        load_concurrency: Requests in flight at once during the load.
        serving_server: "auto" (KServe's model server when the serving environment is
            there, else in-process, recorded and logged), "kserve" (fail without it) or
            "in-process".
        serving_protocol: "v1" or "v2": the REST protocol the check and the load use.
        tolerance: Relative and absolute tolerance between the server's and the in-process
            predictions of a numeric output (text outputs must be equal).
        serving_check_dir: A ServingCheck artifact (the ``serving_check`` component's
            record) of this model: its figures are judged and no check runs here; the
            load parameters above apply only to a check the Pusher runs itself.

    Returns:
        What was done; ``pushed`` is False when the model is not blessed.

    Raises:
        ParameterError: A bad model name, sample size or latency limit.
        DestinationError: The destination is outside the allowed roots.
        ServingCheckError: The model does not load or answer, or is too slow, or the record is
            another model's; nothing published.
    """
    # Settings first, so a wrong destination fails on the first run, blessed or not.
    check_model_name(model_name)
    slo = _slo(max_latency_ms, latency_slo_p95_ms)
    check_parameters(
        sample_size=sample_size,
        load_requests=load_requests,
        load_concurrency=load_concurrency,
        serving_server=serving_server,
        serving_protocol=serving_protocol,
        tolerance=tolerance,
    )
    if not serving_check_dir and not examples_dir:
        raise ParameterError("the Pusher needs a serving check's record or examples to check the model with")
    destination = resolve_destination(push_destination, allowed_roots)
    model_uri = model_uri or model_dir

    blessing = Blessing.read(blessing_dir)
    if not blessing.blessed:
        result = PushResult(
            pushed=False,
            model_name=model_name,
            model_uri=model_uri,
            reason="not blessed: " + "; ".join(blessing.reasons),
        )
        log.info("not pushing %s: %s", model_uri, result.reason)
        _write(pushed_model_dir, result)
        return result

    if served and served[0] == model_uri and _under(served[1], model_location(destination, model_name)):
        result = PushResult(
            pushed=False,
            model_name=model_name,
            model_uri=model_uri,
            reason=f"already served: this model is {served[1]}; not pushed again",
        )
        log.info("not pushing %s: %s", model_uri, result.reason)
        _write(pushed_model_dir, result)
        return result

    saved_model = find_saved_model(model_dir)
    if serving_check_dir:
        check = recorded_check(serving_check_dir, model_uri, saved_model)
    else:
        check = measure(
            model_dir,
            examples_dir,
            model_name=model_name,
            sample_size=sample_size,
            load_requests=load_requests,
            load_concurrency=load_concurrency,
            serving_server=serving_server,
            serving_protocol=serving_protocol,
            tolerance=tolerance,
        )
    log.info("serving check p95 %.3f ms; p95 SLO %s", check.p95_ms, f"{slo:g} ms" if slo else "none")
    judge(check, saved_model, slo)
    published = publish(saved_model, model_name, destination, allowed_roots=allowed_roots)
    result = PushResult(
        pushed=True,
        model_name=model_name,
        model_uri=model_uri,
        version=published.version,
        destination=published.uri,
        pushed_at=published.pushed_at,
        latency_p50_ms=check.p50_ms,
        latency_p95_ms=check.p95_ms,
        check=check,
        latency_slo_p95_ms=slo,
    )
    log.info("pushed %s as %s version %d: %s", model_uri, model_name, published.version, published.uri)
    _write(pushed_model_dir, result)
    return result


def recorded_check(serving_check_dir: str, model_uri: str, saved_model: str) -> ServingCheck:
    """The figures a ServingCheck artifact holds for this model: one of this URI, or of a
    SavedModel with the same content (a check reused from a cache, of a model trained again
    to the same bytes).

    Raises:
        ServingCheckError: The check could not run (its recorded reason), or the record is
            of another model.
        InputDataError: The folder holds no record.
    """
    record = CheckRecord.read(serving_check_dir)
    same_uri = record.model_uri.rstrip("/") == model_uri.rstrip("/")
    if not same_uri and not (
        record.model_fingerprint and record.model_fingerprint == fingerprint_path(saved_model)
    ):
        raise ServingCheckError(
            f"{serving_check_dir}: the serving check is of {record.model_uri}, not of {model_uri}; "
            "check the wiring (serving_check's model must be the Pusher's); not pushed"
        )
    if record.check is None:
        raise ServingCheckError(record.error)
    log.info("serving check of %s read from %s", model_uri, serving_check_dir)
    return record.check


def _under(uri: str, parent: str) -> bool:
    return uri.rstrip("/").startswith(parent.rstrip("/") + "/")


def _slo(max_latency_ms: float, latency_slo_p95_ms: float) -> float:
    """The p95 SLO from the new parameter or its deprecated name (``max_latency_ms``)."""
    for name, value in (("max_latency_ms", max_latency_ms), ("latency_slo_p95_ms", latency_slo_p95_ms)):
        if not value >= 0:
            raise ParameterError(f"{name} {value} must be 0 (no SLO) or more")
    if max_latency_ms <= 0:
        return latency_slo_p95_ms
    if latency_slo_p95_ms not in (max_latency_ms, DEFAULT_SLO_P95_MS):
        raise ParameterError(
            f"max_latency_ms {max_latency_ms:g} and latency_slo_p95_ms {latency_slo_p95_ms:g} disagree;"
            " max_latency_ms is the deprecated name of latency_slo_p95_ms: set only that"
        )
    log.warning(
        "max_latency_ms is deprecated: it is the p95 SLO, now latency_slo_p95_ms (using %g ms)",
        max_latency_ms,
    )
    return max_latency_ms
