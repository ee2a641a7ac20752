"""Pusher's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple, Optional

from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from kubetfx.dsl import component


@component
def pusher(
    model: Input[Model],
    blessing: Input[Artifact],
    pushed_model: Output[Artifact],
    report: Output[HTML],
    model_name: str,
    serving_check: Optional[Input[Artifact]] = None,
    examples: Optional[Input[Dataset]] = None,
    push_destination: str = "",
    max_latency_ms: float = 0.0,
    sample_size: int = 100,
    latency_slo_p95_ms: float = 200.0,
    load_requests: int = 2000,
    load_concurrency: int = 8,
    serving_server: str = "auto",
    serving_protocol: str = "v1",
) -> NamedTuple("Outputs", [("pushed", bool), ("version", int), ("reason", str), ("latency_p95_ms", float)]):
    """Publishes a blessed model for serving, after it was checked in a real model server under load.

    Reads the blessing itself: an unblessed model is not pushed (the task succeeds with
    ``pushed=False`` and the reasons), so calling the Pusher without a condition is safe.
    Before a push the SavedModel must have passed its serving check: served by KServe's
    Python model server on loopback (the serving environment, ``make serving-env``), its
    predictions on a sample of eval examples equal the in-process signature's, and a
    bounded load with no errors and a p95 latency within ``latency_slo_p95_ms``; otherwise
    the task fails and nothing is published. The check is the ``serving_check``
    component's record of this model (``serving_check``, run beside the Evaluator), or,
    given ``examples`` instead, the Pusher runs it itself (``load_requests`` at
    ``load_concurrency``). Without a serving environment, ``serving_server="auto"``
    measures the load in-process and records ``serving_server: in-process``. Versions are
    published atomically under ``<destination>/<model_name>/<version>/``; destinations must
    lie under a root from kubetfx's settings (``KUBETFX_PUSH_ROOT``), never from a pipeline
    parameter.

    Args:
        model: Model from the Trainer (``Format-Serving/`` SavedModel).
        blessing: ModelBlessing from the Evaluator (``BLESSED`` or ``NOT_BLESSED`` file).
        serving_check: ServingCheck from the ``serving_check`` component, of this model:
            its figures are judged here (the load parameters below do not apply).
        examples: Examples, when no ``serving_check`` is given: the Pusher checks the model
            itself on the first ``sample_size`` eval examples.
        pushed_model: Output PushedModel record: ``pushed.json`` and metadata (pushed,
            model_name, version, destination, pushed_at, model_uri, reason, and the serving
            check's serving_server, serving_protocol, load_requests, load_concurrency,
            load_errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_slo_p95_ms,
            predictions_checked, predictions_match).
        report: Output HTML report: what was pushed or why not, and the serving check
            (server, predictions compared, load, p50/p95/p99 against the SLO); written
            also when the check refuses the model.
        model_name: The model's folder name under the destination (TF Serving's model name).
        push_destination: A path or object-store URI under an allowed root; empty for the
            first allowed root; a relative path is taken relative to the first allowed root.
        max_latency_ms: Deprecated: the old name of ``latency_slo_p95_ms`` (used when > 0).
        latency_slo_p95_ms: Refuse the push when the load's p95 latency (ms) is over this
            (0: no SLO).
        sample_size: A check run here: eval examples whose server predictions are compared
            with the in-process signature's (the load sends them in turn).
        load_requests: A check run here: single-example requests in the bounded load.
        load_concurrency: A check run here: requests in flight at once during the load.
        serving_server: A check run here: "auto" (KServe when its environment is there,
            else in-process, recorded as such), "kserve" (fail without it) or "in-process".
        serving_protocol: A check run here: "v1" (``/v1/models/NAME:predict``) or "v2"
            (``/v2/models/NAME/infer``).

    Returns:
        pushed: Whether a version was published.
        version: The version published (0 when not pushed).
        reason: Why not pushed (empty when pushed).
        latency_p95_ms: The serving check's p95 latency under load (0 when no check ran).
    """
    from kubetfx.components.pusher import executor, report_html
    from kubetfx.components.serving_check.serving import ServingCheckError

    from kubetfx.artifacts.kinds import BLESSING, EXAMPLES, MODEL, SERVING_CHECK, expect
    from kubetfx.errors import ParameterError
    from kubetfx.lineage.baseline import served_model
    from kubetfx.reports import write_report
    from kubetfx.settings import resolve_push_roots
    from kubetfx.task import lineage_store

    store = lineage_store()
    served = served_model(store, model_name) if store else None
    expect(MODEL, model.metadata, "model", model.uri)
    expect(BLESSING, blessing.metadata, "blessing", blessing.uri)
    if serving_check is not None:
        expect(SERVING_CHECK, serving_check.metadata, "serving_check", serving_check.uri)
    elif examples is not None:
        expect(EXAMPLES, examples.metadata, "examples", examples.uri)
    else:
        raise ParameterError(
            "pusher: give it serving_check (the serving_check component's output) or examples"
        )
    try:
        result = executor.run(
            model.path,
            blessing.path,
            examples.path if serving_check is None and examples is not None else "",
            pushed_model.path,
            model_name=model_name,
            push_destination=push_destination,
            max_latency_ms=max_latency_ms,
            sample_size=sample_size,
            latency_slo_p95_ms=latency_slo_p95_ms,
            load_requests=load_requests,
            load_concurrency=load_concurrency,
            serving_server=serving_server,
            serving_protocol=serving_protocol,
            model_uri=model.uri,
            allowed_roots=resolve_push_roots(),
            served=(served.model_uri, served.destination) if served else None,
            serving_check_dir=serving_check.path if serving_check is not None else "",
        )
    except ServingCheckError as err:
        write_report(report, report_html.render(model_name, None, err.check, err.slo_p95_ms, error=str(err)))
        raise
    write_report(report, report_html.render(model_name, result, result.check, result.latency_slo_p95_ms))
    pushed_model.metadata.update(result.metadata())
    outputs = NamedTuple(
        "Outputs", [("pushed", bool), ("version", int), ("reason", str), ("latency_p95_ms", float)]
    )
    return outputs(result.pushed, result.version, result.reason, round(result.latency_p95_ms or 0.0, 4))
