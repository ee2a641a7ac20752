"""Pusher: publishes a blessed model for serving, once it has shown that it serves.

1. The blessing is read here, not trusted from the pipeline: without a ``BLESSED`` file
   (or with a ``NOT_BLESSED`` one) nothing is pushed, and the task still succeeds with
   ``pushed=False`` and the reasons, so a pipeline that calls the Pusher without a
   condition is still safe.
2. The serving check (:mod:`.serving`): the SavedModel is loaded and its ``serving_default`` signature called
   on a sample of eval examples, one request at a time; p50/p95 latency are recorded. A
   model that does not load or answer, or whose p95 is over ``max_latency_ms``, fails the
   task and nothing is published.
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

from kubetfx.components.pusher.serving import ServingCheckError, serving_check

from kubetfx.artifacts.blessing import Blessing
from kubetfx.artifacts.examples import first_records
from kubetfx.artifacts.kinds import PUSHED_MODEL, TYPE_KEY
from kubetfx.artifacts.layout import PUSHED_FILE
from kubetfx.artifacts.model import find_saved_model
from kubetfx.errors import InputDataError, ParameterError
from kubetfx.pushing import check_model_name, model_location, publish, resolve_destination

log = logging.getLogger("kubetfx.pusher")

EVAL_SPLIT = "eval"


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
        if self.reason:
            meta["reason"] = self.reason
        return meta


def sample_examples(examples_dir: str, sample_size: int) -> list[bytes]:
    """The first ``sample_size`` serialized tf.Example of the eval split."""
    sample = first_records(examples_dir, EVAL_SPLIT, sample_size)
    if not sample:
        raise InputDataError(f"{examples_dir}: the eval split has no examples to check the model with")
    return sample


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
) -> PushResult:
    """Check the blessing and the model, then publish it.

    Args:
        model_dir: The Model artifact (``Format-Serving/`` SavedModel).
        blessing_dir: The ModelBlessing artifact.
        examples_dir: Examples whose eval split the serving check sends.
        pushed_model_dir: Where ``pushed.json`` goes.
        model_name: The model's folder under the destination.
        push_destination: Path or URI under an allowed root; "" for the first root; a
            relative path is taken relative to the first root.
        max_latency_ms: Refuse the push when the p95 latency is over this (0: no limit).
        sample_size: Eval examples to send, one request each.
        model_uri: The Model artifact's URI, for the record.
        allowed_roots: Where pushes may go: kubetfx's settings (``KUBETFX_PUSH_ROOT``), read
            once by the component's body, never from a pipeline parameter.
        served: (model URI, version folder URI) of the model being served under this
            name, from lineage: the same model already served at this destination is
            not pushed again as a new version (a rerun of an unchanged pipeline).

    Returns:
        What was done; ``pushed`` is False when the model is not blessed.

    Raises:
        ParameterError: A bad model name, sample size or latency limit.
        DestinationError: The destination is outside the allowed roots.
        ServingCheckError: The model does not load or answer, or is too slow; nothing published.
    """
    # Settings first, so a wrong destination fails on the first run, blessed or not.
    check_model_name(model_name)
    if sample_size < 1:
        raise ParameterError(f"sample_size {sample_size} must be at least 1")
    if max_latency_ms < 0:
        raise ParameterError(f"max_latency_ms {max_latency_ms} must be 0 (no limit) or more")
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
    check = serving_check(saved_model, sample_examples(examples_dir, sample_size))
    log.info(
        "serving check of %s: %d requests, p50 %.3f ms, p95 %.3f ms",
        saved_model,
        check.requests,
        check.p50_ms,
        check.p95_ms,
    )
    if max_latency_ms > 0 and check.p95_ms > max_latency_ms:
        raise ServingCheckError(
            f"{saved_model}: p95 latency {check.p95_ms:.3f} ms over {check.requests} requests is over "
            f"max_latency_ms {max_latency_ms}; not pushed (raise the limit or make the model faster)"
        )
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
    )
    log.info("pushed %s as %s version %d: %s", model_uri, model_name, published.version, published.uri)
    _write(pushed_model_dir, result)
    return result


def _under(uri: str, parent: str) -> bool:
    return uri.rstrip("/").startswith(parent.rstrip("/") + "/")
