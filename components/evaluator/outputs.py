"""What an evaluation becomes in Kubeflow Pipelines: the Evaluation and ModelBlessing
artifacts' metadata, the HTML report, the UI's scalar metrics and confusion matrix, and
the component's output parameters. The component's body calls :func:`publish`; tests call
it with plain ``kfp.dsl`` artifacts."""

from __future__ import annotations

from typing import Any

from kubetfx.components.evaluator.executor import EvalResult, metrics_for_ui
from kubetfx.components.evaluator.report import evaluation_html

from kubetfx.artifacts.kinds import BLESSING, EVALUATION, TYPE_KEY
from kubetfx.reports import write_report


def publish(
    result: EvalResult,
    *,
    evaluation: Any,
    blessing: Any,
    report: Any,
    metrics: Any,
    classification_metrics: Any,
    model_name: str,
    model_uri: str,
    baseline_model_uri: str,
    baseline_model_id: int,
) -> tuple[bool, float, str]:
    """Fill the outputs from ``result``; returns (blessed, accuracy, reason) for the
    component's output parameters (the reason is empty when blessed)."""
    recorded = {
        "model_name": model_name,
        "model_uri": model_uri,
        "baseline_model_uri": baseline_model_uri,
        "baseline_model_id": int(baseline_model_id),
    }
    evaluation.metadata.update(result.metadata())
    evaluation.metadata.update(recorded)
    evaluation.metadata[TYPE_KEY] = EVALUATION
    blessing.metadata.update(
        {TYPE_KEY: BLESSING, "blessed": int(result.blessed), "reasons": result.reasons, **recorded}
    )
    write_report(
        report, evaluation_html(result, f"Evaluation of {model_name} ({model_uri})", baseline_model_uri)
    )
    for name, value in metrics_for_ui(result).items():
        metrics.log_metric(name, value)
    if result.confusion:  # none when the model's predictions are not finite numbers
        classification_metrics.log_confusion_matrix(result.classes, result.confusion)
    reason = "" if result.blessed else "; ".join(result.reasons)
    return result.blessed, float(result.overall.metrics.get("accuracy", 0.0)), reason
