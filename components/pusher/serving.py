"""The Pusher's serving check: load the SavedModel and call its serving signature as a
model server would, one request at a time, timing each; a model that does not load or
answer is not published."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetfx.artifacts.layout import SAVED_MODEL_FILE
from kubetfx.errors import missing_runtime
from kubetfx.pushing import SIGNAL_FILES, PushError


class ServingCheckError(PushError):
    """A model failed its serving check: it does not load, answer, or answer fast enough."""


@dataclass(frozen=True)
class ServingCheck:
    """What the serving check measured: one request per example, after a warm-up batch."""

    requests: int
    p50_ms: float
    p95_ms: float
    signature: str
    outputs: tuple[str, ...]


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(err).__name__}: {line[:300]}" if line else type(err).__name__


def serving_check(
    saved_model_dir: str, examples: Sequence[bytes], *, signature: str = "serving_default"
) -> ServingCheck:
    """Load a SavedModel and call its serving signature as a server would, timing each request.

    One warm-up call with every example (it also checks a batch answers), then one
    request per example; p50 and p95 are over those requests.

    Raises:
        ServingCheckError: No SavedModel, it does not load, it has no such signature or not
            one that takes serialized tf.Example, or the signature fails on the examples.
    """
    if not examples:
        raise ServingCheckError(f"{saved_model_dir}: no examples to check the serving signature with")
    if not any(Path(saved_model_dir, name).is_file() for name in SIGNAL_FILES):
        raise ServingCheckError(
            f"{saved_model_dir}: no {SAVED_MODEL_FILE}, so no server can load it; not pushed"
        )
    try:
        import numpy as np
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - runtime profile installs it
        raise missing_runtime("tensorflow", err) from err
    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except Exception as err:  # noqa: BLE001 - whatever fails to load is not pushed
        raise ServingCheckError(
            f"{saved_model_dir}: the SavedModel does not load ({_short(err)}); not pushed"
        ) from err
    fn = loaded.signatures.get(signature)
    if fn is None:
        raise ServingCheckError(
            f"{saved_model_dir}: the SavedModel has no {signature!r} signature (it has: "
            f"{', '.join(sorted(loaded.signatures)) or 'none'}), so a server's requests would fail; "
            "not pushed"
        )
    _, inputs = fn.structured_input_signature
    specs = list(inputs.values())
    if len(specs) != 1 or specs[0].dtype != tf.string:
        raise ServingCheckError(
            f"{saved_model_dir}: signature {signature!r} takes {', '.join(sorted(inputs)) or 'nothing'}; "
            "the Pusher checks signatures that take one string tensor of serialized tf.Example"
        )
    name = next(iter(inputs))

    def call(batch: Sequence[bytes]) -> dict[str, Any]:
        return {k: v.numpy() for k, v in fn(**{name: tf.constant(list(batch))}).items()}

    timings = []
    try:
        outputs = call(examples)
        for record in examples:
            started = time.perf_counter()
            call([record])
            timings.append((time.perf_counter() - started) * 1000.0)
    except Exception as err:  # noqa: BLE001 - a model that does not answer is not pushed
        raise ServingCheckError(
            f"{saved_model_dir}: signature {signature!r} failed on the examples ({_short(err)}); not pushed"
        ) from err
    if not outputs:
        raise ServingCheckError(f"{saved_model_dir}: signature {signature!r} returned nothing; not pushed")
    p50, p95 = (float(v) for v in np.percentile(timings, [50, 95]))
    return ServingCheck(
        requests=len(timings),
        p50_ms=p50,
        p95_ms=p95,
        signature=signature,
        outputs=tuple(sorted(outputs)),
    )
