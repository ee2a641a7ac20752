"""model_resolver's KFP interface: finds the Evaluator's baseline in ML Metadata."""

from typing import NamedTuple, Optional

from kfp.dsl import Artifact, Input

from kubetfx.dsl import component


@component
def model_resolver(
    model_name: str,
    pipeline_name: str = "",
    candidate: Optional[Input[Artifact]] = None,
    baseline_alias: str = "",
) -> NamedTuple("Outputs", [("found", bool), ("model_uri", str), ("model_id", int), ("source", str)]):
    """Finds the baseline model: the one being served, else the latest blessed one (or the
    version an alias such as ``production`` names).

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
        baseline_alias: Compare with the version this alias names (e.g. ``production``)
            instead of the latest push; while the alias names none, the rules above apply.

    Returns:
        found: Whether there is a baseline.
        model_uri: Its URI (empty when none), for the Evaluator's ``baseline_model_uri``.
        model_id: Its ML Metadata artifact id (0 when none).
        source: ``served``, ``alias``, ``blessed`` or ``none``, with how it was chosen.
    """
    from kubetfx.components.model_resolver import executor

    from kubetfx.task import lineage_store
    from kubetfx.task import pipeline_name as running_pipeline

    found = executor.resolve(
        lineage_store(),
        model_name,
        pipeline_name or running_pipeline(),
        candidate.uri if candidate is not None else "",
        alias=baseline_alias,
    )
    print(f"model_resolver: {found.message}")
    outputs = NamedTuple("Outputs", [("found", bool), ("model_uri", str), ("model_id", int), ("source", str)])
    return outputs(found.found, found.model_uri, found.model_id, found.source)
