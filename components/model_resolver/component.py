"""model_resolver's KFP interface: finds the Evaluator's baseline in ML Metadata."""

from typing import NamedTuple, Optional

from kfp.dsl import Artifact, Input

from kubetfx.dsl import component


@component
def model_resolver(
    model_name: str,
    pipeline_name: str = "",
    candidate: Optional[Input[Artifact]] = None,
) -> NamedTuple("Outputs", [("found", bool), ("model_uri", str), ("model_id", int), ("source", str)]):
    """Finds the baseline model: the one being served, else the latest blessed one.

    The model being served is the latest push of ``model_name`` (rollbacks included);
    with nothing pushed yet, it is the latest model the Evaluator blessed under that
    name in the same pipeline. An ordinary container task that reads the metadata
    store (the open-source KFP backend rejects TFX's resolver nodes). Never cache it:
    its answer changes as models are pushed.

    Args:
        model_name: The name models are blessed and pushed under.
        pipeline_name: Whose blessed models count; empty: the running pipeline.
        candidate: The model about to be evaluated (the Trainer's ``model``): never its
            own baseline. Optional; wiring it also orders the resolver after training.

    Returns:
        found: Whether there is a baseline.
        model_uri: Its URI (empty when none), for the Evaluator's ``baseline_model_uri``.
        model_id: Its ML Metadata artifact id (0 when none).
        source: ``served``, ``blessed`` or ``none``, with how it was chosen.
    """
    from kubetfx.lineage.baseline import resolve_baseline
    from kubetfx.task import lineage_store
    from kubetfx.task import pipeline_name as running_pipeline

    outputs = NamedTuple("Outputs", [("found", bool), ("model_uri", str), ("model_id", int), ("source", str)])
    store = lineage_store()
    if store is None:
        print("model_resolver: lineage is off (no KUBETFX_METADATA): no baseline")
        return outputs(False, "", 0, "none: lineage is off")
    candidate_id = 0
    if candidate is not None:
        from kubetfx.lineage.record import find_artifact

        found = find_artifact(store, candidate.uri)
        candidate_id = found.id if found is not None else 0
    baseline = resolve_baseline(store, model_name, pipeline_name or running_pipeline(), candidate_id)
    if baseline is None:
        print(f"model_resolver: no model {model_name!r} served or blessed yet: no baseline")
        return outputs(False, "", 0, "none")
    print(f"model_resolver: baseline for {model_name!r} is model {baseline.model_id} ({baseline.detail})")
    return outputs(True, baseline.model_uri, baseline.model_id, baseline.detail)
