"""serving_check: a trained model in the server it will run in, under load, beside the Evaluator.

TFX's InfraValidator does the same job as its own component, for the same reason: the check
needs only the trained model and the examples, not the Evaluator's verdict, so the two run
side by side, and the Pusher gets both. Here:

1. The SavedModel is loaded in-process and its ``serving_default`` signature called on the
   first ``sample_size`` eval examples.
2. The same version folder is served by KServe's Python model server on loopback, its
   predictions on the sample compared with the in-process ones, and a bounded load
   (``load_requests`` at ``load_concurrency``) measured: p50/p95/p99 latency and errors.
   Without a serving environment, ``serving_server="auto"`` runs the load in-process and
   records ``serving_server: in-process``; ``"kserve"`` records that it could not check.

It measures and records (:class:`~.serving.CheckRecord`, ``serving_check.json``); it judges
nothing. A model that does not load, answer or start in the server is recorded with why,
and the task still succeeds: a model the Evaluator does not bless is not pushed anyway, and
the Pusher refuses a blessed one with the recorded message, or when its figures miss the SLO.
A wrong parameter or an eval split with no examples fails the task.
"""

from __future__ import annotations

import logging

from kubetfx.components.serving_check.serving import (
    DEFAULT_TOLERANCE,
    PROTOCOLS,
    SERVERS,
    CheckRecord,
    ServingCheck,
    ServingCheckError,
    serving_check,
)

from kubetfx.artifacts.examples import first_records
from kubetfx.artifacts.model import find_saved_model
from kubetfx.errors import InputDataError, ParameterError
from kubetfx.fingerprint import fingerprint_path

log = logging.getLogger("kubetfx.serving_check")

EVAL_SPLIT = "eval"


def check_parameters(
    *,
    sample_size: int,
    load_requests: int,
    load_concurrency: int,
    serving_server: str,
    serving_protocol: str,
    tolerance: float,
) -> None:
    """Refuse parameters no check can run with, before any work.

    Raises:
        ParameterError: Naming the parameter and its allowed values.
    """
    if sample_size < 1:
        raise ParameterError(f"sample_size {sample_size} must be at least 1")
    if load_requests < 1 or load_concurrency < 1:
        raise ParameterError(
            f"load_requests ({load_requests}) and load_concurrency ({load_concurrency}) must be at least 1"
        )
    if serving_server not in SERVERS:
        raise ParameterError(f"serving_server {serving_server!r} must be one of {', '.join(SERVERS)}")
    if serving_protocol not in PROTOCOLS:
        raise ParameterError(f"serving_protocol {serving_protocol!r} must be one of {', '.join(PROTOCOLS)}")
    if not tolerance >= 0:
        raise ParameterError(f"tolerance {tolerance} must be 0 or more")


def sample_examples(examples_dir: str, sample_size: int) -> list[bytes]:
    """The first ``sample_size`` serialized tf.Example of the eval split.

    Raises:
        InputDataError: The eval split has no examples.
    """
    sample = first_records(examples_dir, EVAL_SPLIT, sample_size)
    if not sample:
        raise InputDataError(f"{examples_dir}: the eval split has no examples to check the model with")
    return sample


def measure(
    model_dir: str,
    examples_dir: str,
    *,
    model_name: str = "model",
    sample_size: int = 100,
    load_requests: int = 2000,
    load_concurrency: int = 8,
    serving_server: str = "auto",
    serving_protocol: str = "v1",
    tolerance: float = DEFAULT_TOLERANCE,
) -> ServingCheck:
    """Check the model (see the module docstring) and log the figures; judges nothing.

    Raises:
        ServingCheckError: The model does not load, answer, or start in the server.
        InputDataError: The eval split has no examples.
    """
    saved_model = find_saved_model(model_dir)
    check = serving_check(
        saved_model,
        sample_examples(examples_dir, sample_size),
        model_name=model_name,
        server=serving_server,
        protocol=serving_protocol,
        requests=load_requests,
        concurrency=load_concurrency,
        tolerance=tolerance,
    )
    log.info(
        "serving check of %s on %s%s: %d predictions compared (%s), %d requests at concurrency %d "
        "in %.1f s: p50 %.3f ms, p95 %.3f ms, p99 %.3f ms, %d errors",
        saved_model,
        check.server,
        f" ({check.protocol} REST)" if check.protocol else "",
        check.predictions_checked,
        {True: "match", False: "DIFFER", None: "nothing to compare in-process"}[check.predictions_match],
        check.requests,
        check.concurrency,
        check.seconds,
        check.p50_ms,
        check.p95_ms,
        check.p99_ms,
        check.errors,
    )
    return check


def run(
    model_dir: str,
    examples_dir: str,
    check_dir: str,
    *,
    model_uri: str = "",
    model_name: str = "model",
    sample_size: int = 100,
    load_requests: int = 2000,
    load_concurrency: int = 8,
    serving_server: str = "auto",
    serving_protocol: str = "v1",
    tolerance: float = DEFAULT_TOLERANCE,
) -> CheckRecord:
    """Check the model and write the record (``serving_check.json``) to ``check_dir``.

    Args:
        model_dir: The Model artifact (``Format-Serving/`` SavedModel, or a bare SavedModel).
        examples_dir: Examples whose eval split is the sample.
        check_dir: Where the record goes.
        model_uri: The Model artifact's URI, recorded so the Pusher can tell the record is
            its model's (default: ``model_dir``).
        model_name: The name the model server serves it under.
        sample_size: Eval examples whose server predictions are compared with the
            in-process signature's (the load sends them in turn).
        load_requests: Single-example requests in the bounded load.
        load_concurrency: Requests in flight at once during the load.
        serving_server: "auto", "kserve" or "in-process" (see the module docstring).
        serving_protocol: "v1" or "v2": the REST protocol the check and the load use.
        tolerance: Relative and absolute tolerance between the server's and the in-process
            predictions of a numeric output (text outputs must be equal).

    Returns:
        The record: the figures, or the error that stopped the check.

    Raises:
        ParameterError: A parameter no check can run with.
        InputDataError: The eval split has no examples.
    """
    check_parameters(
        sample_size=sample_size,
        load_requests=load_requests,
        load_concurrency=load_concurrency,
        serving_server=serving_server,
        serving_protocol=serving_protocol,
        tolerance=tolerance,
    )
    model_uri = model_uri or model_dir
    checked = fingerprint_path(find_saved_model(model_dir)) or ""
    try:
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
    except ServingCheckError as err:
        log.warning("serving check of %s: %s", model_uri, err)
        record = CheckRecord(model_uri=model_uri, error=str(err), model_fingerprint=checked)
    else:
        record = CheckRecord(model_uri=model_uri, check=check, model_fingerprint=checked)
    record.write(check_dir)
    return record
