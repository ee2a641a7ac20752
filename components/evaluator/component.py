"""Evaluator's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kubetfx.dsl import component


@component
def evaluator(
    examples: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Artifact],
    blessing: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    label_key: str,
    model_name: str = "model",
    slice_features: list = [],  # noqa: B006 - KFP reads the default from the signature
    feature_crosses: list = [],  # noqa: B006
    fairness_thresholds: list = [0.5],  # noqa: B006
    min_accuracy: float = 0.0,
    max_accuracy_drop: float = 0.02,
    value_thresholds: dict = {},  # noqa: B006
    change_thresholds: dict = {},  # noqa: B006
    fairness_metric: str = "",
    max_fairness_gap: float = 0.2,
    min_slice_size: int = 10,
    baseline_model_uri: str = "",
    baseline_model_id: int = 0,
    beam_pipeline_args: list = [],  # noqa: B006 - KFP reads the default from the signature
) -> NamedTuple("Outputs", [("blessed", bool), ("accuracy", float), ("reason", str)]):
    """Evaluates a model with TFMA per slice, against a baseline, and blesses it or not.

    Args:
        examples: Examples whose eval split is evaluated.
        model: The candidate model (``Format-Serving/`` SavedModel).
        evaluation: Output ModelEvaluation: TFMA's metrics, plots and validations, and
            ``summary.json`` (per-slice metrics, checks, fairness gaps).
        blessing: Output ModelBlessing: ``BLESSED`` or ``NOT_BLESSED`` and ``reasons.json``.
        report: Output HTML report: verdict, per-slice table, fairness chart, confusion matrix.
        metrics: Output overall metrics and fairness gaps for the Kubeflow UI.
        classification_metrics: Output confusion matrix for the Kubeflow UI.
        label_key: The label column.
        model_name: The name the model is pushed under (recorded on the blessing; the
            resolver finds baselines by it).
        slice_features: Fairness features: one slice per value of each, gated on the gap.
        feature_crosses: Extra slices by crosses, e.g. ``["sex,island"]`` (reported only).
        fairness_thresholds: Decision thresholds of the Fairness Indicators rates;
            the smallest one is the one gated and shown.
        min_accuracy: The overall accuracy a model must reach (0: no floor).
        max_accuracy_drop: How much overall accuracy may drop against the baseline.
        value_thresholds: More absolute bounds, e.g. ``{"auc": 0.9}``: a floor for
            accuracy, auc, precision, recall, tpr, tnr; a ceiling for fnr, fpr and other
            error rates. auc/precision/recall/rates need a binary label.
        change_thresholds: More allowed changes against the baseline, e.g.
            ``{"auc": 0.01}``: auc may drop by at most 0.01 (rates may rise by at most).
        fairness_metric: Per-slice metric gated between slices; default ``fnr`` for a
            binary label, ``accuracy`` for a multi-class one.
        max_fairness_gap: Largest allowed gap of that metric between slices of a feature;
            a gap blocks only when its 95% interval (exact, from the counts) lies above it.
        min_slice_size: Slices with fewer of the metric's own denominator (positives for
            FNR and TPR, negatives for FPR and TNR, predicted positives for precision,
            examples for accuracy) are reported but not gated.
        baseline_model_uri: The model to compare against (from ``model_resolver``);
            empty: only the absolute thresholds apply.
        baseline_model_id: Its ML Metadata artifact id, recorded as an input.
        beam_pipeline_args: Beam options: given, TFMA evaluates on Beam with them (its
            ``run_model_analysis``); empty: in this process, TFMA's Beam path only for
            what the in-process metrics do not support. See docs/beam.md.

    Returns:
        blessed: Whether the model passed every check (for ``dsl.If``).
        accuracy: Overall accuracy on the eval split.
        reason: Why not blessed (the failed checks; empty when blessed).
    """
    from kubetfx.components.evaluator import executor, outputs

    from kubetfx.artifacts.kinds import EXAMPLES, MODEL, expect
    from kubetfx.artifacts.location import local_dir
    from kubetfx.task import add_input

    expect(EXAMPLES, examples.metadata, "examples", examples.uri)
    expect(MODEL, model.metadata, "model", model.uri)
    settings = executor.EvalSettings.from_parameters(
        label_key=label_key,
        slice_features=slice_features,
        feature_crosses=feature_crosses,
        fairness_thresholds=fairness_thresholds,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        value_thresholds=value_thresholds,
        change_thresholds=change_thresholds,
        fairness_metric=fairness_metric,
        max_fairness_gap=max_fairness_gap,
        min_slice_size=min_slice_size,
    )
    if baseline_model_id:
        add_input("baseline_model", int(baseline_model_id))
    result = executor.run(
        examples.path,
        model.path,
        evaluation.path,
        blessing.path,
        settings,
        baseline_model_dir=local_dir(baseline_model_uri) if baseline_model_uri else "",
        pipeline_options=beam_pipeline_args,
    )
    published = outputs.publish(
        result,
        evaluation=evaluation,
        blessing=blessing,
        report=report,
        metrics=metrics,
        classification_metrics=classification_metrics,
        model_name=model_name,
        model_uri=model.uri,
        baseline_model_uri=baseline_model_uri,
        baseline_model_id=baseline_model_id,
    )
    return NamedTuple("Outputs", [("blessed", bool), ("accuracy", float), ("reason", str)])(*published)
