"""model_card's KFP interface: a pushed model's card, from lineage, for the Kubeflow UI."""

from kfp.dsl import HTML, Artifact, Input, Output

from kubetfx.dsl import component


@component
def model_card(pushed_model: Input[Artifact], report: Output[HTML], model_card: Output[Artifact]) -> None:
    """Builds the model card of what the Pusher recorded, from lineage alone.

    Data (examples, spans, rows, fingerprints), schema, training (parameters, epochs,
    metrics), the evaluation per slice with the fairness gaps and their intervals, the
    blessing, the serving check, the model's pushes, stepped rollouts and aliases: all read
    from ML Metadata, no artifact file opened. Never cache it: rollouts and aliases are
    added to lineage after the push (``kubetfx model-card NAME:VERSION`` draws it again).

    Args:
        pushed_model: The Pusher's ``pushed_model`` (pushed or not: a model that was not
            pushed gets a card that says why).
        report: Output HTML card, rendered by the Kubeflow UI.
        model_card: Output ``model_card.json``, valid against the Model Card Toolkit's
            JSON schema v0.0.2 (checked before anything is written).
    """
    import os

    from kubetfx.components.model_card import executor

    from kubetfx.reports import write_report
    from kubetfx.task import lineage_store

    os.makedirs(model_card.path, exist_ok=True)
    result = executor.run(lineage_store(), pushed_model.uri, dict(pushed_model.metadata), model_card.path)
    write_report(report, result.html)
    model_card.metadata.update(result.metadata())
    print(f"model_card: {result.summary}")
