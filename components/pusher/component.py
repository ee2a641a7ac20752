"""Pusher's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubetfx.dsl import component


@component
def pusher(
    model: Input[Model],
    blessing: Input[Artifact],
    examples: Input[Dataset],
    pushed_model: Output[Artifact],
    model_name: str,
    push_destination: str = "",
    max_latency_ms: float = 0.0,
    sample_size: int = 100,
) -> NamedTuple("Outputs", [("pushed", bool), ("version", int), ("reason", str)]):
    """Publishes a blessed model for TF Serving, after checking that it loads and answers.

    Reads the blessing itself: an unblessed model is not pushed (the task succeeds with
    ``pushed=False`` and the reasons), so calling the Pusher without a condition is safe.
    Before a push the SavedModel is loaded and ``serving_default`` called on a sample of eval
    examples, one request each; a model that does not load or answer, or is too slow,
    fails the task and nothing is published. Versions are published atomically under
    ``<destination>/<model_name>/<version>/``; destinations must lie under a root from
    kubetfx's settings (``KUBETFX_PUSH_ROOT``), never from a pipeline parameter.

    Args:
        model: Model from the Trainer (``Format-Serving/`` SavedModel).
        blessing: ModelBlessing from the Evaluator (``BLESSED`` or ``NOT_BLESSED`` file).
        examples: Examples; the eval split is the serving check's sample.
        pushed_model: Output PushedModel record: ``pushed.json`` and metadata (pushed,
            model_name, version, destination, pushed_at, latency_p50_ms, latency_p95_ms,
            model_uri, reason).
        model_name: The model's folder name under the destination (TF Serving's model name).
        push_destination: A path or object-store URI under an allowed root; empty for the
            first allowed root; a relative path is taken relative to the first allowed root.
        max_latency_ms: Refuse the push when the p95 latency is over this (0: no limit).
        sample_size: Eval examples the serving check sends.

    Returns:
        pushed: Whether a version was published.
        version: The version published (0 when not pushed).
        reason: Why not pushed (empty when pushed).
    """
    from kubetfx.components.pusher import executor

    from kubetfx.artifacts.kinds import BLESSING, EXAMPLES, MODEL, expect
    from kubetfx.lineage.baseline import served_model
    from kubetfx.settings import resolve_push_roots
    from kubetfx.task import lineage_store

    store = lineage_store()
    served = served_model(store, model_name) if store else None
    expect(MODEL, model.metadata, "model", model.uri)
    expect(BLESSING, blessing.metadata, "blessing", blessing.uri)
    expect(EXAMPLES, examples.metadata, "examples", examples.uri)
    result = executor.run(
        model.path,
        blessing.path,
        examples.path,
        pushed_model.path,
        model_name=model_name,
        push_destination=push_destination,
        max_latency_ms=max_latency_ms,
        sample_size=sample_size,
        model_uri=model.uri,
        allowed_roots=resolve_push_roots(),
        served=(served.model_uri, served.destination) if served else None,
    )
    pushed_model.metadata.update(result.metadata())
    outputs = NamedTuple("Outputs", [("pushed", bool), ("version", int), ("reason", str)])
    return outputs(result.pushed, result.version, result.reason)
