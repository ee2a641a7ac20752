"""The serving check: the model in the server it will run in, under load.

1. The SavedModel is loaded in-process and its serving signature called on the eval sample:
   a model that does not load, has no such signature, or does not answer is refused.
2. The same version folder is served by KServe's Python model server
   (:mod:`kubetfx.serving.modelserver`, the serving environment ``.venv-serving``) on
   loopback; the eval sample is sent over the chosen REST protocol (V1 or V2) and the
   server's predictions compared with the in-process signature's (numbers within
   ``tolerance``, relative and absolute; text exactly).
3. A bounded load (``requests`` single-example requests at ``concurrency``,
   :mod:`kubetfx.serving.loadtest`) gives p50/p95/p99 latency and the error count.

Without a serving environment (``server="auto"``), steps 2-3 run in-process instead: the
same load on the signature from ``concurrency`` threads, no HTTP, and the check is recorded
as ``serving_server: in-process`` (and logged as a warning); ``server="kserve"`` refuses to
go on without the server. Judging the figures (SLO, errors, match) is the Pusher's.

:class:`CheckRecord` is the ServingCheck artifact: the figures of one model's check, or why
it could not be checked, written by the ``serving_check`` component and read by the Pusher.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kubetfx.artifacts.kinds import SERVING_CHECK, TYPE_KEY
from kubetfx.artifacts.layout import SAVED_MODEL_FILE, SERVING_CHECK_FILE
from kubetfx.errors import InputDataError, missing_runtime
from kubetfx.pushing import SIGNAL_FILES, PushError

log = logging.getLogger("kubetfx.serving_check")

IN_PROCESS = "in-process"
SERVERS = ("auto", "kserve", IN_PROCESS)
PROTOCOLS = ("v1", "v2")
DEFAULT_TOLERANCE = 1e-5
BATCH = 32  # examples per request when comparing predictions


class ServingCheckError(PushError):
    """A model failed its serving check: it does not load, answer, or answer fast enough.

    ``check`` holds the figures when the check ran to the end and they were refused."""

    check: ServingCheck | None = None
    slo_p95_ms: float = 0.0


@dataclass(frozen=True)
class ServingCheck:
    """What the serving check measured (latencies in milliseconds)."""

    requests: int
    p50_ms: float
    p95_ms: float
    signature: str
    outputs: tuple[str, ...]
    p99_ms: float = 0.0
    concurrency: int = 1
    errors: int = 0
    error_samples: tuple[str, ...] = ()
    seconds: float = 0.0
    server: str = IN_PROCESS  # "kserve 0.15.2" or "in-process"
    protocol: str = ""  # "v1" / "v2"; "" in-process
    predictions_checked: int = 0  # examples whose server predictions were compared
    predictions_match: bool | None = None  # None: nothing to compare (in-process)
    max_difference: float = 0.0  # largest absolute difference of a numeric output
    mismatch: str = ""  # the first difference found, when they do not match
    tolerance: float = DEFAULT_TOLERANCE
    server_note: str = ""  # why in-process, when it is

    @property
    def in_server(self) -> bool:
        """Whether the figures come from a real model server."""
        return self.server != IN_PROCESS


def check_metadata(check: ServingCheck, slo_p95_ms: float | None = None) -> dict[str, Any]:
    """The check's figures under the metadata keys of the ServingCheck and PushedModel
    artifacts (with the SLO they were judged against, when they were)."""
    meta: dict[str, Any] = {
        "serving_server": check.server,
        "serving_protocol": check.protocol or "none",
        "load_requests": check.requests,
        "load_concurrency": check.concurrency,
        "load_errors": check.errors,
        "load_seconds": round(check.seconds, 4),
        "latency_p50_ms": round(check.p50_ms, 4),
        "latency_p95_ms": round(check.p95_ms, 4),
        "latency_p99_ms": round(check.p99_ms, 4),
    }
    if slo_p95_ms is not None:
        meta["latency_slo_p95_ms"] = slo_p95_ms
    meta["predictions_checked"] = check.predictions_checked
    if check.predictions_match is not None:
        meta["predictions_match"] = int(check.predictions_match)
        meta["predictions_tolerance"] = check.tolerance
        meta["predictions_max_difference"] = check.max_difference
    if check.server_note:
        meta["serving_note"] = check.server_note
    return meta


@dataclass(frozen=True)
class CheckRecord:
    """The ServingCheck artifact: one model's serving check, or why it could not be checked.

    ``error`` is set (and ``check`` is None) when the model did not load, answer or start in
    the server: the Pusher refuses to push it with that message. The record names the model
    it checked (``model_uri``) and the SavedModel's content (``model_fingerprint``), so a
    check of another model is never taken for this one's.
    """

    model_uri: str
    check: ServingCheck | None = None
    error: str = ""
    model_fingerprint: str = ""  # of the SavedModel folder checked ("" when there was none)

    def metadata(self) -> dict[str, Any]:
        """The artifact's metadata: the figures, or the error."""
        meta: dict[str, Any] = {
            TYPE_KEY: SERVING_CHECK,
            "model_uri": self.model_uri,
            "checked": int(self.check is not None),
        }
        if self.model_fingerprint:
            meta["model_fingerprint"] = self.model_fingerprint
        if self.check is not None:
            meta.update(check_metadata(self.check))
        if self.error:
            meta["error"] = self.error
        return meta

    def write(self, folder: str) -> None:
        """``serving_check.json``: the whole check, read back by :meth:`read`."""
        os.makedirs(folder, exist_ok=True)
        body: dict[str, Any] = {
            "model_uri": self.model_uri,
            "model_fingerprint": self.model_fingerprint,
            "error": self.error,
        }
        if self.check is not None:
            body["check"] = asdict(self.check)
        Path(folder, SERVING_CHECK_FILE).write_text(json.dumps(body, indent=1) + "\n")

    @classmethod
    def read(cls, folder: str) -> CheckRecord:
        """The record a ServingCheck artifact holds.

        Raises:
            InputDataError: No ``serving_check.json`` there, or one that is not a record.
        """
        path = Path(folder, SERVING_CHECK_FILE)
        try:
            body = json.loads(path.read_text())
            known = {f.name for f in fields(ServingCheck)}
            found = body.get("check")
            check = None
            if found is not None:
                values = {k: v for k, v in found.items() if k in known}
                values["outputs"] = tuple(values.get("outputs", ()))
                values["error_samples"] = tuple(values.get("error_samples", ()))
                check = ServingCheck(**values)
            record = cls(
                model_uri=str(body["model_uri"]),
                check=check,
                error=str(body.get("error") or ""),
                model_fingerprint=str(body.get("model_fingerprint") or ""),
            )
        except FileNotFoundError as err:
            raise InputDataError(f"{path}: no serving check record (is the input a ServingCheck?)") from err
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise InputDataError(f"{path}: not a serving check record ({_short(err)})") from err
        if record.check is None and not record.error:
            raise InputDataError(f"{path}: holds neither a check nor an error")
        return record


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(err).__name__}: {line[:300]}" if line else type(err).__name__


def load_signature(saved_model_dir: str, signature: str = "serving_default") -> tuple[Any, Any, str]:
    """(the loaded SavedModel, its signature's function, the input's name). Keep the first
    while calling the function: its variables live as long as it does.

    Raises:
        ServingCheckError: No SavedModel, it does not load, it has no such signature, or not
            one that takes one string tensor of serialized tf.Example.
    """
    if not any(Path(saved_model_dir, name).is_file() for name in SIGNAL_FILES):
        raise ServingCheckError(
            f"{saved_model_dir}: no {SAVED_MODEL_FILE}, so no server can load it; not pushed"
        )
    try:
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
    return loaded, fn, next(iter(inputs))


def _caller(loaded: Any, fn: Any, input_name: str) -> Callable[[Sequence[bytes]], dict[str, Any]]:
    import tensorflow as tf

    def call(batch: Sequence[bytes]) -> dict[str, Any]:
        assert loaded is not None  # held by the closure: the signature's variables live with it
        return {k: v.numpy() for k, v in fn(**{input_name: tf.constant(list(batch))}).items()}

    return call


def _batches(examples: Sequence[bytes]) -> list[Sequence[bytes]]:
    return [examples[i : i + BATCH] for i in range(0, len(examples), BATCH)]


def serving_check(
    saved_model_dir: str,
    examples: Sequence[bytes],
    *,
    signature: str = "serving_default",
    model_name: str = "model",
    server: str = "auto",
    protocol: str = "v1",
    requests: int = 2000,
    concurrency: int = 8,
    tolerance: float = DEFAULT_TOLERANCE,
    request_timeout: float = 10.0,
    start_timeout: float = 180.0,
) -> ServingCheck:
    """Check a SavedModel as the module docstring says; returns the figures, judges nothing.

    Raises:
        ServingCheckError: The model does not load or answer in-process; the server does not
            start or load it (``server`` "kserve" or "auto" with an environment); or
            ``server="kserve"`` and there is no serving environment.
    """
    if not examples:
        raise ServingCheckError(f"{saved_model_dir}: no examples to check the serving signature with")
    loaded, fn, input_name = load_signature(saved_model_dir, signature)
    call = _caller(loaded, fn, input_name)
    try:
        expected = [call(batch) for batch in _batches(examples)]
    except Exception as err:  # noqa: BLE001 - a model that does not answer is not pushed
        raise ServingCheckError(
            f"{saved_model_dir}: signature {signature!r} failed on the examples ({_short(err)}); not pushed"
        ) from err
    if not expected[0]:
        raise ServingCheckError(f"{saved_model_dir}: signature {signature!r} returned nothing; not pushed")
    outputs = tuple(sorted(expected[0]))

    from kubetfx.serving.modelserver import ServingServerError, serving_python

    python = serving_python() if server != IN_PROCESS else None
    if python is None:
        note = (
            "asked for in-process"
            if server == IN_PROCESS
            else "no serving environment (KUBETFX_SERVING_PYTHON or .venv-serving; make serving-env)"
        )
        if server == "kserve":
            raise ServingCheckError(
                f"{saved_model_dir}: serving_server is 'kserve' but there is {note}; not pushed "
                "(build the serving environment, or set serving_server to 'auto' or 'in-process')"
            )
        if server == "auto":
            log.warning(
                "serving check of %s runs IN-PROCESS, not in a model server: %s", saved_model_dir, note
            )
        return _in_process(call, examples, signature, outputs, requests, concurrency, tolerance, note)
    try:
        return _in_server(
            saved_model_dir,
            examples,
            expected,
            signature=signature,
            outputs=outputs,
            model_name=model_name,
            python=python,
            protocol=protocol,
            requests=requests,
            concurrency=concurrency,
            tolerance=tolerance,
            request_timeout=request_timeout,
            start_timeout=start_timeout,
        )
    except ServingServerError as err:
        raise ServingCheckError(
            f"{saved_model_dir}: the model server did not serve it ({_short(err)}); not pushed"
        ) from err


def _in_process(
    call: Callable[[Sequence[bytes]], dict[str, Any]],
    examples: Sequence[bytes],
    signature: str,
    outputs: tuple[str, ...],
    requests: int,
    concurrency: int,
    tolerance: float,
    note: str,
) -> ServingCheck:
    """The bounded load on the signature itself, from ``concurrency`` threads."""
    from kubetfx.serving.loadtest import percentiles

    errors: list[str] = []

    def one(i: int) -> float | None:
        started = time.perf_counter()
        try:
            call([examples[i % len(examples)]])
        except Exception as err:  # noqa: BLE001 - counted as a load error
            errors.append(_short(err))
            return None
        return (time.perf_counter() - started) * 1000.0

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(min(2 * concurrency, requests))))  # warm-up, not counted
        errors.clear()
        started = time.perf_counter()
        timings = [t for t in pool.map(one, range(requests)) if t is not None]
        seconds = time.perf_counter() - started
    p50, p95, p99 = percentiles(timings)
    return ServingCheck(
        requests=requests,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        signature=signature,
        outputs=outputs,
        concurrency=concurrency,
        errors=len(errors),
        error_samples=tuple(errors[:3]),
        seconds=seconds,
        tolerance=tolerance,
        server_note=note,
    )


def _in_server(
    saved_model_dir: str,
    examples: Sequence[bytes],
    expected: list[dict[str, Any]],
    *,
    signature: str,
    outputs: tuple[str, ...],
    model_name: str,
    python: str,
    protocol: str,
    requests: int,
    concurrency: int,
    tolerance: float,
    request_timeout: float,
    start_timeout: float,
) -> ServingCheck:
    import httpx

    from kubetfx.serving.loadtest import run_load
    from kubetfx.serving.modelserver import running_server

    with running_server(
        saved_model_dir, model_name, timeout=start_timeout, signature=signature, python=python
    ) as running:
        url = running.predict_url if protocol == "v1" else running.infer_url
        version = _server_version(running.url)
        checked, worst, mismatch = 0, 0.0, ""
        with httpx.Client(timeout=max(request_timeout, 30.0)) as client:
            for batch, want in zip(_batches(examples), expected, strict=True):
                answer = client.post(url, json=request_body(protocol, batch))
                if not answer.is_success:
                    raise ServingCheckError(
                        f"{saved_model_dir}: the model server answered HTTP {answer.status_code} to "
                        f"{len(batch)} eval examples ({answer.text[:300]}); not pushed"
                    )
                got = response_outputs(protocol, answer.json(), outputs, len(batch))
                difference, problem = compare(want, got, tolerance)
                worst = max(worst, difference)
                if problem and not mismatch:
                    mismatch = f"examples {checked}-{checked + len(batch) - 1}: {problem}"
                checked += len(batch)
        payloads = [request_body(protocol, [record]) for record in examples]
        load = run_load(url, payloads, requests=requests, concurrency=concurrency, timeout=request_timeout)
    return ServingCheck(
        requests=load.requests,
        p50_ms=load.p50_ms,
        p95_ms=load.p95_ms,
        p99_ms=load.p99_ms,
        signature=signature,
        outputs=outputs,
        concurrency=load.concurrency,
        errors=load.errors,
        error_samples=load.error_samples,
        seconds=load.seconds,
        server=version,
        protocol=protocol,
        predictions_checked=checked,
        predictions_match=not mismatch,
        max_difference=worst,
        mismatch=mismatch,
        tolerance=tolerance,
    )


def _server_version(url: str) -> str:
    """``"kserve 0.15.2"``, from the server's own V2 metadata (``GET /v2``)."""
    import httpx

    try:
        meta = httpx.get(f"{url}/v2", timeout=10.0).json()
        return f"{meta.get('name') or 'kserve'} {meta.get('version') or '?'}".strip()
    except (httpx.HTTPError, ValueError):
        return "kserve ?"


def request_body(protocol: str, records: Sequence[bytes]) -> dict[str, Any]:
    """A predict (V1) or infer (V2) request carrying serialized tf.Example, base64 encoded."""
    import base64

    encoded = [base64.b64encode(r).decode("ascii") for r in records]
    if protocol == "v1":
        return {"instances": [{"b64": text} for text in encoded]}
    return {
        "inputs": [
            {
                "name": "examples",
                "datatype": "BYTES",
                "shape": [len(encoded)],
                "data": encoded,
                "parameters": {"content_type": "base64"},
            }
        ]
    }


def response_outputs(protocol: str, body: dict[str, Any], names: Sequence[str], count: int) -> dict[str, Any]:
    """The server's answer as ``{output: array}``, one row per example."""
    import numpy as np

    if protocol == "v1":
        rows = body.get("predictions") or []
        if len(rows) != count:
            raise ServingCheckError(f"the server answered {len(rows)} predictions for {count} examples")
        if len(names) == 1:
            return {names[0]: np.array(rows, dtype=object)}
        return {name: np.array([row.get(name) for row in rows], dtype=object) for name in names}
    found = {o["name"]: o for o in body.get("outputs") or []}
    return {
        name: np.array(found[name]["data"], dtype=object).reshape(found[name]["shape"])
        for name in names
        if name in found
    }


def compare(want: dict[str, Any], got: dict[str, Any], tolerance: float) -> tuple[float, str]:
    """(largest absolute difference of a numeric output, the first problem or "")."""
    import numpy as np

    worst = 0.0
    for name, expected in want.items():
        if name not in got:
            return worst, f"output {name!r} is missing from the server's answer"
        expected = np.asarray(expected)
        try:
            answer = np.asarray(got[name]).reshape(expected.shape)
        except ValueError:
            return (
                worst,
                f"output {name!r} has shape {np.asarray(got[name]).shape}, expected {expected.shape}",
            )
        if expected.dtype.kind in "fiub":
            answer = answer.astype(np.float64)
            diff = np.abs(answer - expected.astype(np.float64))
            biggest = float(np.nanmax(diff)) if diff.size else 0.0
            worst = max(worst, biggest if not math.isnan(biggest) else math.inf)
            if not np.allclose(answer, expected, rtol=tolerance, atol=tolerance, equal_nan=True):
                return worst, f"output {name!r} differs by up to {biggest:.3g} (tolerance {tolerance:g})"
        else:
            texts = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in expected.ravel()
            ]
            if texts != [str(v) for v in answer.ravel()]:
                return worst, f"output {name!r} differs as text"
    return worst, ""
