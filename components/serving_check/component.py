"""serving_check's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubetfx.dsl import component


@component
def serving_check(
    model: Input[Model],
    examples: Input[Dataset],
    check: Output[Artifact],
    model_name: str = "model",
    sample_size: int = 100,
    load_requests: int = 2000,
    load_concurrency: int = 8,
    serving_server: str = "auto",
    serving_protocol: str = "v1",
) -> NamedTuple("Outputs", [("checked", bool), ("latency_p95_ms", float), ("error", str)]):
    """Checks a trained model in a real model server under load, beside the Evaluator.

    The SavedModel is served by KServe's Python model server on loopback (the serving
    environment, ``make serving-env``): its predictions on the first ``sample_size`` eval
    examples are compared with the in-process signature's, and a bounded load
    (``load_requests`` single-example requests at ``load_concurrency``) gives p50/p95/p99
    latency and errors. Without a serving environment, ``serving_server="auto"`` runs the
    load in-process and records ``serving_server: in-process``. It records and judges
    nothing: a model that does not load, answer or start in the server is recorded with
    why, and the task succeeds; the Pusher refuses such a model, or one whose figures miss
    its SLO. It needs only the trained model and the examples, so it runs while the
    Evaluator evaluates (TFX's InfraValidator does the same job).

    Args:
        model: Model from the Trainer (``Format-Serving/`` SavedModel).
        examples: Examples; the eval split is the sample the check sends.
        check: Output ServingCheck: ``serving_check.json`` (the whole check, for the
            Pusher) and metadata: model_uri, checked (1/0), error, serving_server,
            serving_protocol, load_requests, load_concurrency, load_errors, load_seconds,
            latency_p50_ms, latency_p95_ms, latency_p99_ms, predictions_checked,
            predictions_match, predictions_max_difference, predictions_tolerance.
        model_name: The name the model server serves it under.
        sample_size: Eval examples whose server predictions are compared with the
            in-process signature's (the load sends them in turn).
        load_requests: Single-example requests in the bounded load.
        load_concurrency: Requests in flight at once during the load.
        serving_server: "auto" (KServe when its environment is there, else in-process,
            recorded as such), "kserve" (record that it could not check without it) or
            "in-process".
        serving_protocol: "v1" (``/v1/models/NAME:predict``) or "v2" (``/v2/models/NAME/infer``).

    Returns:
        checked: Whether the check ran to the end (its figures are in ``check``).
        latency_p95_ms: The p95 latency under load (0 when the check did not run).
        error: Why the model could not be checked (empty when it was).
    """
    from kubetfx.components.serving_check import executor

    from kubetfx.artifacts.kinds import EXAMPLES, MODEL, expect

    expect(MODEL, model.metadata, "model", model.uri)
    expect(EXAMPLES, examples.metadata, "examples", examples.uri)
    record = executor.run(
        model.path,
        examples.path,
        check.path,
        model_uri=model.uri,
        model_name=model_name,
        sample_size=sample_size,
        load_requests=load_requests,
        load_concurrency=load_concurrency,
        serving_server=serving_server,
        serving_protocol=serving_protocol,
    )
    check.metadata.update(record.metadata())
    outputs = NamedTuple("Outputs", [("checked", bool), ("latency_p95_ms", float), ("error", str)])
    p95 = round(record.check.p95_ms, 4) if record.check is not None else 0.0
    return outputs(record.check is not None, p95, record.error)
