"""Evaluator: TFMA on the eval split, per slice, against a baseline, with a fairness gate.

What it builds from the component's parameters:

* an ``EvalConfig``: the overall slice, one slice per fairness feature and the feature
  crosses asked for; example count, accuracy, AUC, precision, recall, calibration and
  the Fairness Indicators rates (FNR, FPR, TPR, TNR, FDR, FOR) at the chosen
  thresholds, computed by TFMA's own confusion-matrix metrics (binarized per class:
  the positive class for a binary label, every class for a multi-class one);
* value thresholds and, when a baseline model is given, change thresholds against it:
  TFMA evaluates both models in one pass and validates the thresholds itself;
* a fairness gate: for each fairness feature, the gap of one per-slice metric between
  its slices, from TFMA's confusion counts: slices with fewer than ``min_slice_size`` of
  the metric's own denominator (positives for FNR, ...) are reported, not gated, and a
  gap blocks only when its exact interval lies wholly above ``max_fairness_gap``.

The model is blessed when TFMA's validation passes and no feature's gap is too wide;
every check that ran is written down with its numbers, failed or not.

The module is one piece because its parts are one decision: the config, the gates and
the verdict read the same settings and slices, and splitting them would pass those back
and forth. What stands alone lives beside it: the in-process metrics (:mod:`.engine`),
the label and prediction screen (:mod:`.screen`), the intervals (:mod:`.intervals`) and
the report (:mod:`.report`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kubetfx.components.evaluator import intervals, screen
from kubetfx.components.evaluator.intervals import Estimate

from kubetfx.artifacts import evaluation as evaluation_artifact
from kubetfx.artifacts.blessing import Blessing
from kubetfx.artifacts.examples import first_records
from kubetfx.artifacts.kinds import EVALUATION, TYPE_KEY
from kubetfx.artifacts.layout import SERVING_DIR
from kubetfx.artifacts.model import serving_dir
from kubetfx.beam import split_args
from kubetfx.errors import KubetfxError

SIGNATURE = "serving_default"
CANDIDATE = "candidate"
BASELINE = "baseline"
FAIRNESS_RATES = ("fnr", "fpr", "tpr", "tnr", "false_discovery_rate", "false_omission_rate")
_RATE_CLASSES = {
    "fnr": "FNR",
    "fpr": "FPR",
    "tpr": "TPR",
    "tnr": "TNR",
    "false_discovery_rate": "FalseDiscoveryRate",
    "false_omission_rate": "FalseOmissionRate",
}
# Our names for the metrics a threshold or the fairness gate may name -> TFMA's names.
GATEABLE = {
    "accuracy": "sparse_categorical_accuracy",
    "auc": "auc",
    "precision": "precision",
    "recall": "recall",
    **{rate: rate for rate in FAIRNESS_RATES},
}
# Confusion counts per class and threshold (TFMA's own metrics), named "tp@0.5".
COUNT_METRICS = {"tp": "TruePositives", "fp": "FalsePositives", "tn": "TrueNegatives", "fn": "FalseNegatives"}
PRECISION_THRESHOLD = 0.5  # TFMA's Precision and Recall without thresholds
# What each rate counts: (numerator, the cells of its denominator, what they are).
RATE_COUNTS = {
    "fnr": ("fn", ("tp", "fn"), "positives"),
    "tpr": ("tp", ("tp", "fn"), "positives"),
    "recall": ("tp", ("tp", "fn"), "positives"),
    "fpr": ("fp", ("fp", "tn"), "negatives"),
    "tnr": ("tn", ("fp", "tn"), "negatives"),
    "precision": ("tp", ("tp", "fp"), "predicted positives"),
    "false_discovery_rate": ("fp", ("tp", "fp"), "predicted positives"),
    "false_omission_rate": ("fn", ("fn", "tn"), "predicted negatives"),
}
# What the denominator of each gateable metric counts (min_slice_size applies to it).
_DENOMINATORS = {
    **{metric: of for metric, (_, _, of) in RATE_COUNTS.items()},
    "accuracy": "examples",
    "auc": "positives or negatives",
}
ENGINES = ("auto", "tfma", "in-process")
HIGHER_IS_BETTER = {"accuracy", "auc", "precision", "recall", "tpr", "tnr"}


class EvaluationError(KubetfxError):
    """The evaluation cannot run as configured (a missing feature, an unusable model)."""


@dataclass
class EvalSettings:
    """What to evaluate and what blesses a model (from the component's parameters)."""

    label_key: str
    slice_features: list[str] = field(default_factory=list)
    feature_crosses: list[list[str]] = field(default_factory=list)
    fairness_thresholds: list[float] = field(default_factory=lambda: [0.5])
    value_thresholds: dict[str, float] = field(default_factory=dict)
    change_thresholds: dict[str, float] = field(default_factory=dict)
    fairness_metric: str = ""
    max_fairness_gap: float = 0.2
    min_slice_size: int = 10

    def __post_init__(self) -> None:
        self.fairness_thresholds = sorted({round(float(t), 6) for t in self.fairness_thresholds})
        if not self.fairness_thresholds or not all(0 < t < 1 for t in self.fairness_thresholds):
            raise EvaluationError(
                f"fairness_thresholds must lie strictly between 0 and 1: {self.fairness_thresholds}"
            )
        for kind, mapping in (
            ("value_thresholds", self.value_thresholds),
            ("change_thresholds", self.change_thresholds),
        ):
            for name in mapping:
                if _metric_name(name) not in GATEABLE:
                    raise EvaluationError(
                        f"{kind}: unknown metric {name!r}; use one of {sorted(GATEABLE)}"
                        " (rates take the first fairness threshold)"
                    )
        if self.fairness_metric and _metric_name(self.fairness_metric) not in GATEABLE:
            raise EvaluationError(
                f"fairness_metric {self.fairness_metric!r} is not one of {sorted(GATEABLE)}"
            )
        if self.max_fairness_gap < 0 or self.min_slice_size < 0:
            raise EvaluationError("max_fairness_gap and min_slice_size must not be negative")

    @classmethod
    def from_parameters(
        cls,
        *,
        label_key: str,
        slice_features: Sequence[Any],
        feature_crosses: Sequence[Any],
        fairness_thresholds: Sequence[Any],
        min_accuracy: float,
        max_accuracy_drop: float,
        value_thresholds: Mapping[str, Any],
        change_thresholds: Mapping[str, Any],
        fairness_metric: str,
        max_fairness_gap: float,
        min_slice_size: int,
    ) -> EvalSettings:
        """The settings the component's parameters give: ``min_accuracy`` (when above 0) and
        ``max_accuracy_drop`` are the accuracy thresholds, the dicts name any others."""
        return cls(
            label_key=label_key,
            slice_features=[str(f) for f in slice_features],
            feature_crosses=parse_crosses(feature_crosses),
            fairness_thresholds=[float(t) for t in fairness_thresholds],
            value_thresholds={
                **({"accuracy": min_accuracy} if min_accuracy > 0 else {}),
                **{str(k): float(v) for k, v in value_thresholds.items()},
            },
            change_thresholds={
                "accuracy": max_accuracy_drop,
                **{str(k): float(v) for k, v in change_thresholds.items()},
            },
            fairness_metric=fairness_metric,
            max_fairness_gap=max_fairness_gap,
            min_slice_size=min_slice_size,
        )


def _finite(value: float) -> float | None:
    """NaN (a rate with nothing to count) as None: JSON and lineage structs have no NaN."""
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _metric_name(name: str) -> str:
    return name.split("@")[0].strip().lower()


def parse_crosses(crosses: Sequence[Any]) -> list[list[str]]:
    """``["sex,island"]`` or ``[["sex", "island"]]`` -> ``[["sex", "island"]]``."""
    parsed = []
    for cross in crosses:
        names = [n.strip() for n in (cross.split(",") if isinstance(cross, str) else cross) if str(n).strip()]
        if len(names) < 2:
            raise EvaluationError(f"feature cross {cross!r} needs two or more feature names")
        parsed.append([str(n) for n in names])
    return parsed


@dataclass
class SliceRow:
    """Metrics of one slice, in our names (rates at the first fairness threshold)."""

    slice: str
    feature: str  # "" for overall, "a & b" for crosses
    example_count: int
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    # The gateable metrics with their counts and 95% intervals (see ``slice_estimates``).
    estimates: dict[str, Estimate] = field(default_factory=dict)


@dataclass
class Check:
    """One gate that ran: what it compared and whether it passed."""

    name: str
    passed: bool
    detail: str


@dataclass
class EvalResult:
    """What an evaluation found."""

    blessed: bool
    checks: list[Check]
    slices: list[SliceRow]
    classes: list[str]
    binary: bool
    fairness_metric: str
    fairness: dict[str, dict[str, Any]]
    confusion: list[list[int]]
    baseline_uri: str
    eval_examples: int
    wall_seconds: float
    engine: str = "tfma"  # what computed the metrics: "in-process" or "tfma"
    engine_note: str = ""  # why TFMA ran when the in-process path was asked for
    label_key: str = ""
    positive_class: str = ""  # the label value the rates count as positive (binary labels)
    fairness_threshold: float = 0.5  # the rates' decision threshold (the first fairness threshold)
    unlabelled_examples: int = 0  # eval examples left out: no label (empty or NaN)
    non_finite_predictions: dict[str, int] = field(default_factory=dict)  # model -> examples

    @property
    def reasons(self) -> list[str]:
        """Why not blessed (failed checks), or what passed when blessed."""
        failed = [c.detail for c in self.checks if not c.passed]
        return failed or [c.detail for c in self.checks]

    @property
    def overall(self) -> SliceRow:
        return self.slices[0]

    def metadata(self) -> dict[str, Any]:
        """Evaluation artifact metadata."""
        return {
            TYPE_KEY: EVALUATION,
            "blessed": int(self.blessed),
            "classes": self.classes,
            "eval_examples": self.eval_examples,
            "overall": {k: _finite(v) for k, v in self.overall.metrics.items()},
            "fairness_metric": self.fairness_metric,
            "fairness_gaps": {f: v["gap"] for f, v in self.fairness.items() if v.get("gap") is not None},
            # The gated metric of each fairness slice: value, its counts and 95% interval.
            "fairness_estimates": {
                f: {
                    name: {
                        "value": _finite(e["value"]),
                        "numerator": e["numerator"],
                        "denominator": e["denominator"],
                        "of": e["of"],
                        "low": _finite(e["low"]),
                        "high": _finite(e["high"]),
                    }
                    for name, e in v.get("estimates", {}).items()
                }
                for f, v in self.fairness.items()
            },
            "positive_class": self.positive_class,
            "baseline_model_uri": self.baseline_uri,
            "slices": len(self.slices),
            # Per-slice metrics in lineage too, so an audit needs no access to the files.
            "slice_metrics": {
                r.slice: {
                    "examples": r.example_count,
                    **{k: _finite(v) for k, v in r.metrics.items() if "@" not in k},
                }
                for r in self.slices
            },
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
            "unlabelled_examples": self.unlabelled_examples,
            "non_finite_predictions": dict(self.non_finite_predictions),
            "wall_seconds": round(self.wall_seconds, 3),
            "engine": self.engine,
        }


# ---------------------------------------------------------------------- model probe


def _sample_examples(examples_dir: str, n: int) -> list[bytes]:
    sample = first_records(examples_dir, "eval", n)
    if not sample:
        raise EvaluationError(f"{examples_dir}: the eval split is empty")
    return sample


def model_classes(model_dir: str, sample: list[bytes]) -> list[str]:
    """Load the serving signature and read the class names it answers with."""
    return _probe(model_dir, sample)[0]


def _probe(model_dir: str, sample: list[bytes]) -> tuple[list[str], Any]:
    """(class names, the loaded serving signature) of a model."""
    import tensorflow as tf

    path = serving_dir(model_dir)
    try:
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures[SIGNATURE]
        out = serve(examples=tf.constant(sample))
    except Exception as err:  # noqa: BLE001 - any load/call failure is the model's
        raise EvaluationError(
            f"model {path}: cannot call its {SIGNATURE!r} signature on serialized tf.Examples: {_gist(err)};"
            f" the model must be a SavedModel under {SERVING_DIR}/ (the Trainer writes one) whose"
            f" {SIGNATURE!r} takes serialized tf.Example"
        ) from None
    if "probabilities" not in out:
        raise EvaluationError(f"model {path}: {SIGNATURE!r} returns {sorted(out)}, not 'probabilities'")
    n = int(out["probabilities"].shape[-1])

    def call(examples: Any) -> Any:
        return serve(examples=examples)

    call.model = loaded  # type: ignore[attr-defined]  # a signature does not keep its SavedModel alive
    if "all_classes" in out:
        return [c.decode() for c in out["all_classes"].numpy()[0]], call
    return [str(i) for i in range(n)], call


def _gist(err: BaseException) -> str:
    """The telling line of a TensorFlow error (its first line is often just "Graph execution error:")."""
    text = str(err).strip()
    match = re.search(r"(INVALID_ARGUMENT|NOT_FOUND|FAILED_PRECONDITION|UNIMPLEMENTED)[^\n]*", text)
    if match:
        return match.group(0).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _label_info(sample: list[bytes], label_key: str, classes: list[str], examples_dir: str) -> None:
    """Refuse labels TFMA would silently misread."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(sample[0])
    if label_key not in example.features.feature:
        raise EvaluationError(f"{examples_dir}: the eval examples have no label feature {label_key!r}")
    kind = example.features.feature[label_key].WhichOneof("kind")
    if kind in ("int64_list", "float_list") and classes != [str(i) for i in range(len(classes))]:
        raise EvaluationError(
            f"label {label_key!r} is numeric but the model's classes are {classes}: TFMA reads a numeric"
            " label as a class index, so the classes must be 0..n-1 (or make the label a string)"
        )


def check_features(
    examples_dir: str, sample: list[bytes], names: Sequence[str], parameter: str = "slice_features"
) -> None:
    """Every slicing feature must exist in the eval data (``parameter`` names where they came from)."""
    from tensorflow.core.example import example_pb2

    present: set[str] = set()
    for record in sample:
        present.update(example_pb2.Example.FromString(record).features.feature.keys())
    missing = [n for n in names if n not in present]
    if missing:
        raise EvaluationError(
            f"{parameter}: slice feature(s) {missing} not found in the eval examples of {examples_dir}"
            f" (features: {sorted(present)}); fix {parameter} to name features of the data"
        )


# ---------------------------------------------------------------------- config


def build_eval_config(settings: EvalSettings, n_classes: int, with_baseline: bool) -> Any:
    """The TFMA EvalConfig for these settings."""
    import tensorflow_model_analysis as tfma

    binary = n_classes == 2
    model_specs = [
        tfma.ModelSpec(
            name=CANDIDATE,
            signature_name=SIGNATURE,
            label_key=settings.label_key,
            prediction_key="probabilities",
        )
    ]
    if with_baseline:
        model_specs.append(
            tfma.ModelSpec(
                name=BASELINE,
                signature_name=SIGNATURE,
                label_key=settings.label_key,
                prediction_key="probabilities",
                is_baseline=True,
            )
        )
    slicing = [tfma.SlicingSpec()]
    slicing += [tfma.SlicingSpec(feature_keys=[f]) for f in settings.slice_features]
    slicing += [tfma.SlicingSpec(feature_keys=list(c)) for c in settings.feature_crosses]
    first = settings.fairness_thresholds[0]

    def threshold_for(ours: str) -> Any:
        value = settings.value_thresholds.get(ours)
        change = settings.change_thresholds.get(ours) if with_baseline else None
        if value is None and change is None:
            return None
        higher = ours in HIGHER_IS_BETTER
        threshold = tfma.MetricThreshold()
        if value is not None:
            bound = tfma.GenericValueThreshold()
            (bound.lower_bound if higher else bound.upper_bound).value = float(value)
            threshold.value_threshold.CopyFrom(bound)
        if change is not None:
            delta = tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER
                if higher
                else tfma.MetricDirection.LOWER_IS_BETTER
            )
            delta.absolute.value = -float(change) if higher else float(change)
            threshold.change_threshold.CopyFrom(delta)
        return threshold

    def overall_only(threshold: Any) -> dict[str, Any]:
        # Thresholds gate the overall slice; slices are gated by the fairness gap.
        if threshold is None:
            return {}
        return {
            "per_slice_thresholds": [
                tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
            ]
        }

    overall_metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="SparseCategoricalAccuracy", **overall_only(threshold_for("accuracy"))),
        tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ]
    per_class = [
        tfma.MetricConfig(class_name="AUC"),
        tfma.MetricConfig(class_name="Precision"),
        tfma.MetricConfig(class_name="Recall"),
        tfma.MetricConfig(class_name="Calibration"),
        tfma.MetricConfig(class_name="CalibrationPlot"),
    ]

    def rate(name: str, at: float, threshold: Any = None) -> Any:
        # One config per rate and threshold, named "fnr@0.5": with several thresholds
        # in one config TFMA would write an array instead of one value per metric.
        config = json.dumps({"thresholds": [at], "name": f"{name}@{at}"})
        return tfma.MetricConfig(class_name=_RATE_CLASSES[name], config=config, **overall_only(threshold))

    gates = {r: threshold_for(r) for r in FAIRNESS_RATES} if binary else {}
    per_class += [
        rate(r, at, gates.get(r) if at == first else None)
        for r in FAIRNESS_RATES
        for at in settings.fairness_thresholds
    ]
    # The confusion counts behind every rate (and behind precision and recall, which
    # TFMA takes at 0.5): the fairness gate's denominators and intervals come from them.
    per_class += [
        tfma.MetricConfig(
            class_name=class_name, config=json.dumps({"thresholds": [at], "name": f"{name}@{at}"})
        )
        for name, class_name in COUNT_METRICS.items()
        for at in sorted({*settings.fairness_thresholds, PRECISION_THRESHOLD})
    ]
    # Thresholds on binarized metrics apply to the positive class (binary labels only).
    if binary:
        for ours in ("auc", "precision", "recall"):
            t = threshold_for(ours)
            if t is not None:
                name = {"auc": "AUC", "precision": "Precision", "recall": "Recall"}[ours]
                per_class = [m for m in per_class if m.class_name != name]
                per_class.append(tfma.MetricConfig(class_name=name, **overall_only(t)))
    else:
        asked = [
            n
            for n in (*settings.value_thresholds, *settings.change_thresholds)
            if _metric_name(n) != "accuracy"
        ]
        if asked:
            raise EvaluationError(
                f"thresholds on {sorted(set(asked))} need a binary label;"
                " a multi-class model is gated on accuracy"
            )
    class_ids = [1] if binary else list(range(n_classes))
    metrics_specs = [
        tfma.MetricsSpec(metrics=overall_metrics),
        tfma.MetricsSpec(
            metrics=per_class, binarize=tfma.BinarizationOptions(class_ids={"values": class_ids})
        ),
    ]
    return tfma.EvalConfig(model_specs=model_specs, slicing_specs=slicing, metrics_specs=metrics_specs)


# ---------------------------------------------------------------------- reading results


def _slice_name(slice_key: Any) -> tuple[str, str]:
    """(display name, feature) of a TFMA SliceKey proto.

    The value of a feature named in ``KUBETFX_REDACT_FEATURES`` is replaced by a stable
    stand-in here, where every report, reason and lineage record takes its slice names.
    """
    from kubetfx.settings import is_redacted, redact_value

    parts = []
    features = []
    for single in slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind)
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if is_redacted(single.column):
            value = redact_value(single.column, str(value))
        parts.append(f"{single.column}={value}")
        features.append(single.column)
    return (" & ".join(parts) or "Overall"), " & ".join(features)


def _our_name(tfma_name: str) -> str:
    base, _, at = tfma_name.partition("@")
    for ours, theirs in GATEABLE.items():
        if base == theirs:
            return f"{ours}@{at}" if at else ours
    return tfma_name


def read_slices(output_dir: str, classes: list[str], binary: bool, first_threshold: float) -> list[SliceRow]:
    """Per-slice metrics from TFMA's output, overall first."""
    import tensorflow_model_analysis as tfma

    rows = []
    for metrics_for_slice in tfma.load_metrics(output_dir):
        name, feature = _slice_name(metrics_for_slice.slice_key)
        metrics: dict[str, float] = {}
        baseline: dict[str, float] = {}
        per_class: dict[str, dict[str, float]] = {}
        for kv in metrics_for_slice.metric_keys_and_values:
            key = kv.key
            if key.is_diff or not kv.value.HasField("double_value"):
                continue
            value = kv.value.double_value.value
            ours = _our_name(key.name)
            target = baseline if key.model_name == BASELINE else metrics
            if key.sub_key.HasField("class_id"):
                cls = (
                    classes[key.sub_key.class_id.value] if key.sub_key.class_id.value < len(classes) else "?"
                )
                if key.model_name != BASELINE:
                    per_class.setdefault(cls, {})[ours] = value
                if binary and key.sub_key.class_id.value == 1:
                    target[ours] = value
            else:
                target[ours] = value
        if not binary and per_class:
            # Classes absent from a slice have no positives (recall is NaN): leave them out.
            present = [v for v in per_class.values() if not math.isnan(v.get("recall", math.nan))]
            # AUC needs negatives too: a class that is the whole slice has none (its FPR is NaN).
            both = [v for v in present if not math.isnan(v.get(f"fpr@{first_threshold}", math.nan))]
            for metric in ("auc", "precision", "recall"):
                pool = both if metric == "auc" else present
                values = [v[metric] for v in pool if metric in v and not math.isnan(v[metric])]
                if values:
                    metrics[f"macro_{metric}"] = sum(values) / len(values)
        for rate in FAIRNESS_RATES:  # "fnr" means the rate at the first threshold
            if f"{rate}@{first_threshold}" in metrics:
                metrics[rate] = metrics[f"{rate}@{first_threshold}"]
        count = int(metrics.pop("example_count", 0))
        baseline.pop("example_count", None)
        counts = {k: metrics.pop(k) for k in list(metrics) if _metric_name(k) in COUNT_METRICS}
        for k in [k for k in baseline if _metric_name(k) in COUNT_METRICS]:
            del baseline[k]
        row = SliceRow(name, feature, count, metrics, per_class, baseline)
        row.estimates = slice_estimates(row, counts, binary, first_threshold)
        rows.append(row)
    rows.sort(key=lambda r: (r.feature != "", r.feature.count("&"), r.feature, r.slice))
    return rows


def slice_estimates(
    row: SliceRow, counts: Mapping[str, float], binary: bool, first_threshold: float
) -> dict[str, Estimate]:
    """Each gateable metric of a slice with its counts and Clopper-Pearson (for AUC,
    Hoeffding) interval: accuracy always; for a binary label the positive class's
    rates at the first fairness threshold, precision and recall at 0.5, and AUC."""
    out: dict[str, Estimate] = {}
    accuracy = row.metrics.get("accuracy", math.nan)
    if row.example_count and not math.isnan(accuracy):
        # TFMA's accuracy is a float32 ratio of two counts: exact below 2**23 examples.
        matches = round(accuracy * row.example_count)
        estimate = intervals.proportion(matches, row.example_count, "examples")
        if estimate is not None:
            out["accuracy"] = estimate
    if not binary:
        return out
    for metric, (top, cells, of) in RATE_COUNTS.items():
        at = PRECISION_THRESHOLD if metric in ("precision", "recall") else first_threshold
        values = {c: counts.get(f"{c}@{at}") for c in {top, *cells}}
        if any(v is None or math.isnan(v) for v in values.values()):
            continue
        estimate = intervals.proportion(round(values[top]), round(sum(values[c] for c in cells)), of)
        if estimate is not None:
            out[metric] = estimate
    cells = {c: counts.get(f"{c}@{first_threshold}", math.nan) for c in COUNT_METRICS}
    if "auc" in row.metrics and not any(math.isnan(v) for v in cells.values()):
        estimate = intervals.auc_estimate(
            row.metrics["auc"], round(cells["tp"] + cells["fn"]), round(cells["fp"] + cells["tn"])
        )
        if estimate is not None:
            out["auc"] = estimate
    return out


def read_confusion(output_dir: str, n_classes: int) -> list[list[int]]:
    """The overall multi-class confusion matrix (rows: actual, columns: predicted)."""
    import tensorflow_model_analysis as tfma

    matrix = [[0] * n_classes for _ in range(n_classes)]
    for plots in tfma.load_plots(output_dir):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name == BASELINE or not kv.value.HasField(
                "multi_class_confusion_matrix_at_thresholds"
            ):
                continue
            for at in kv.value.multi_class_confusion_matrix_at_thresholds.matrices:
                for entry in at.entries:
                    if 0 <= entry.actual_class_id < n_classes and 0 <= entry.predicted_class_id < n_classes:
                        matrix[entry.actual_class_id][entry.predicted_class_id] = int(
                            entry.num_weighted_examples
                        )
                break
    return matrix


def read_validation(output_dir: str) -> tuple[bool, list[Check]]:
    """TFMA's threshold validation, one Check per failed metric and slice."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(output_dir)
    checks = []
    for per_slice in result.metric_validations_per_slice:
        name, _ = _slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            metric = _our_name(failure.metric_key.name)
            what = "change vs baseline" if failure.metric_key.is_diff else "value"
            bound = _bound_text(failure.metric_threshold)
            value = failure.metric_value.double_value.value
            checks.append(
                Check(
                    f"{'change' if failure.metric_key.is_diff else 'value'}:{metric}",
                    False,
                    f"{metric} {what} on {name} is {value:+.4f}, outside {bound}"
                    if failure.metric_key.is_diff
                    else f"{metric} on {name} is {value:.4f}, outside {bound}",
                )
            )
    # With no thresholds configured TFMA reports missing_thresholds and not OK; that is
    # "nothing to validate", not a failure (the fairness gate may still apply).
    ok = bool(result.validation_ok) or (result.missing_thresholds and not checks)
    return ok, checks


def _bound_text(threshold: Any) -> str:
    parts = []
    if threshold.HasField("value_threshold"):
        v = threshold.value_threshold
        if v.HasField("lower_bound"):
            parts.append(f">= {v.lower_bound.value:g}")
        if v.HasField("upper_bound"):
            parts.append(f"<= {v.upper_bound.value:g}")
    if threshold.HasField("change_threshold"):
        c = threshold.change_threshold
        if c.HasField("absolute"):
            parts.append(f"change {'>=' if c.absolute.value <= 0 else '<='} {c.absolute.value:+g}")
    return " and ".join(parts) or "its threshold"


# ---------------------------------------------------------------------- gates


def _num(value: float) -> str:
    """Three decimals: what a gate on rates can tell apart."""
    return f"{value:.3f}"


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.3g}%"


def _described(name: str, e: Estimate) -> str:
    """``group=b (0.500, 125/250 positives, 95% CI 0.438 to 0.562)``."""
    interval = f"{_pct(intervals.CONFIDENCE)} CI {_num(e.low)} to {_num(e.high)}"
    return f"{name} ({_num(e.value)}, {e.counts()}, {interval})"


def fairness_gate(
    rows: list[SliceRow], settings: EvalSettings, metric: str
) -> tuple[dict[str, dict[str, Any]], list[Check]]:
    """The gap of ``metric`` between the slices of each fairness feature, with its interval.

    A slice is compared when the metric's own denominator (positives for FNR and TPR,
    negatives for FPR and TNR, predicted positives for precision and FDR, predicted
    negatives for FOR, examples for accuracy, the fewer of positives and negatives for
    AUC) reaches ``min_slice_size``. With ``k`` slices compared there are
    ``m = k(k-1)/2`` pairs; each pair's difference gets a square-and-add interval at the
    Bonferroni level ``1 - 0.05/m``. The gate blocks when some pair's interval lies wholly
    above ``max_fairness_gap``: the chance of blocking a model whose true gaps are all
    within ``max_fairness_gap`` is then at most 5% over the whole feature (Bonferroni),
    as far as the intervals hold their level. A point gap over ``max_fairness_gap`` whose
    interval reaches down to it is reported, not blocked.
    """
    report: dict[str, dict[str, Any]] = {}
    checks = []
    floor = max(settings.min_slice_size, 1)
    for feature in settings.slice_features:
        slices = [r for r in rows if r.feature == feature]
        estimates = {r.slice: r.estimates[metric] for r in slices if metric in r.estimates}
        of = _DENOMINATORS.get(metric, "examples")
        gated = {name: e for name, e in estimates.items() if e.denominator >= floor}
        # Slices with nothing to count (no positives at all for FNR) have no estimate.
        small = {r.slice: (estimates[r.slice].denominator if r.slice in estimates else 0) for r in slices}
        small = {name: n for name, n in small.items() if name not in gated}
        entry: dict[str, Any] = {
            "metric": metric,
            "of": of,
            "min_slice_size": settings.min_slice_size,
            "confidence": intervals.CONFIDENCE,
            "values": {name: e.value for name, e in gated.items()},
            "estimates": {name: asdict(e) for name, e in estimates.items()},
            "not_gated": list(small),
            "not_gated_counts": small,
            "gap": None,
        }
        report[feature] = entry
        too_small = (
            f"not gated (fewer than {settings.min_slice_size} {of}): "
            + ", ".join(f"{name} ({n} {of})" for name, n in small.items())
            if small
            else ""
        )
        if len(gated) < 2:
            have = ", ".join(f"{name} ({e.denominator} {of})" for name, e in gated.items())
            detail = (
                f"fairness on {feature}: {metric} compares slices with >= {settings.min_slice_size} {of};"
                f" {'only ' + have if have else 'none'} has that many, so there is no gap to gate"
            )
            checks.append(Check(f"fairness:{feature}", True, detail + (f"; {too_small}" if small else "")))
            continue
        pairs = len(gated) * (len(gated) - 1) // 2
        level = 1 - (1 - intervals.CONFIDENCE) / pairs
        # Ties are broken by name, so two different slices are named even when equal.
        ordered = sorted(gated, key=lambda name: (gated[name].value, name))
        differences = {
            (low, high): intervals.difference(gated[high], gated[low], level)
            for i, low in enumerate(ordered)
            for high in ordered[i + 1 :]
        }
        widest = (ordered[0], ordered[-1])
        strongest = max(differences, key=lambda pair: (differences[pair][1], pair == widest))
        blocked = differences[strongest][1] > settings.max_fairness_gap
        low, high = strongest if blocked else widest
        gap, gap_low, gap_high = differences[(low, high)]
        entry.update(
            gap=gap,
            low=low,
            high=high,
            gap_interval=[gap_low, gap_high],
            gap_confidence=level,
            pairs=pairs,
            significant=blocked,
        )
        level_text = _pct(level) + (
            f" ({_pct(intervals.CONFIDENCE)} over {pairs} pairs of slices)" if pairs > 1 else ""
        )
        compared = (
            f"fairness on {feature}: {metric} gap {_num(gap)} between {_described(low, gated[low])}"
            f" and {_described(high, gated[high])}"
        )
        interval = f"the gap's {level_text} interval is {_num(gap_low)} to {_num(gap_high)}"
        limit = f"{settings.max_fairness_gap:g}"
        if blocked:
            detail = f"{compared} exceeds {limit}: {interval}, wholly above {limit}"
        elif gap > settings.max_fairness_gap:
            detail = (
                f"{compared} is over {limit} but not shown to be: {interval}, which reaches {limit}"
                f" (too few {of} to tell); not blocked"
            )
        else:
            detail = f"{compared} within {limit} ({interval})"
        if small:
            detail += f"; {too_small}"
        checks.append(Check(f"fairness:{feature}", not blocked, detail))
    return report, checks


# ---------------------------------------------------------------------- run


def gated_metric(settings: EvalSettings, binary: bool, classes: Sequence[str]) -> str:
    """The fairness gate's metric: ``fairness_metric``, else FNR (binary) or accuracy."""
    if not settings.fairness_metric:
        return "fnr" if binary else "accuracy"
    metric = _metric_name(settings.fairness_metric)
    if not binary and metric != "accuracy":
        # A multi-class model has one such rate per class: there is no one positive class.
        raise EvaluationError(
            f"fairness_metric {metric!r} needs a binary label (its rates count one positive class);"
            f" the model answers with {len(classes)} classes {list(classes)}: gate it on accuracy"
        )
    return metric


def run(
    examples_dir: str,
    model_dir: str,
    evaluation_dir: str,
    blessing_dir: str,
    settings: EvalSettings,
    *,
    baseline_model_dir: str = "",
    pipeline_options: Sequence[str] = (),
    engine: str = "auto",
) -> EvalResult:
    """Evaluate ``model_dir`` on the eval split; write the evaluation and the blessing.

    ``engine``: ``"auto"`` computes the metrics in-process (:mod:`.engine`) when that path
    supports the configuration and data, else with TFMA's ``run_model_analysis``;
    ``"tfma"`` always runs TFMA; ``"in-process"`` refuses to fall back. Beam options in
    ``pipeline_options`` (``beam_pipeline_args``) make ``"auto"`` run TFMA on Beam with them.
    """
    if engine not in ENGINES:
        raise EvaluationError(f"engine {engine!r} is not one of {ENGINES}")
    if engine == "auto" and split_args(pipeline_options):
        engine = "tfma"  # Beam options given: TFMA on Beam with them (see .beam_path)
    started = time.perf_counter()
    # One read of the eval split's head: a few examples probe the model, more find the
    # slicing features.
    slice_sample = _sample_examples(examples_dir, 2000)
    sample = slice_sample[:8]
    classes, serve = _probe(model_dir, sample)
    if len(classes) < 2:
        raise EvaluationError(f"model {model_dir}: answers with {len(classes)} class(es); need two or more")
    binary = len(classes) == 2
    baseline_serve = None
    if baseline_model_dir:
        if not os.path.isdir(serving_dir(baseline_model_dir)):
            raise EvaluationError(f"baseline model {baseline_model_dir}: no {SERVING_DIR}/ SavedModel")
        baseline_classes, baseline_serve = _probe(baseline_model_dir, sample)
        if baseline_classes != classes:
            raise EvaluationError(
                f"baseline model {baseline_model_dir} answers with classes {baseline_classes},"
                f" the candidate with {classes}: they cannot be compared"
            )
    metric = gated_metric(settings, binary, classes)
    # Before any metric: labels present, predictions finite (TFMA fails on NaN predictions).
    models = {CANDIDATE: serve, **({BASELINE: baseline_serve} if baseline_serve else {})}
    found = screen.screen(examples_dir, settings.label_key, models)
    notes: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="kubetfx-labelled-") as labelled_dir:
        if found.unlabelled:
            if not found.labelled:
                raise EvaluationError(
                    f"{examples_dir}: none of the {found.examples} eval examples has a label"
                    f" {settings.label_key!r} (all empty or NaN): there is nothing to evaluate"
                )
            notes.append(Check("labels", True, _unlabelled_note(found, settings.label_key)))
            print(f"evaluator: {notes[-1].detail}", flush=True)
            examples_dir = screen.write_labelled(examples_dir, settings.label_key, labelled_dir)
            slice_sample = _sample_examples(examples_dir, 2000)
            sample = slice_sample[:8]
        if found.non_finite.get(BASELINE):
            detail = (
                f"baseline model {baseline_model_dir} ignored: its "
                + screen.describe_non_finite("", found.non_finite[BASELINE], found.labelled).lstrip()
                + "; only the absolute thresholds apply"
            )
            notes.append(Check("baseline", True, detail))
            print(f"evaluator: {detail}", flush=True)
            baseline_model_dir, baseline_serve = "", None
        ignored_baseline = bool(found.non_finite.get(BASELINE))
        common = {
            "classes": classes,
            "binary": binary,
            "fairness_metric": metric,
            "label_key": settings.label_key,
            "positive_class": classes[1] if binary else "",
            "fairness_threshold": settings.fairness_thresholds[0],
            "unlabelled_examples": found.unlabelled,
            "non_finite_predictions": {k: v for k, v in found.non_finite.items() if v},
        }
        if found.non_finite.get(CANDIDATE):
            detail = (
                "the model's "
                + screen.describe_non_finite("", found.non_finite[CANDIDATE], found.labelled).lstrip()
                + ": the training diverged (check the learning rate); no metric can be computed"
            )
            print(f"evaluator: not blessed: {detail}", flush=True)
            result = EvalResult(
                blessed=False,
                checks=[*notes, Check("predictions", False, detail)],
                slices=[SliceRow("Overall", "", found.labelled, {})],
                fairness={},
                confusion=[],
                baseline_uri=baseline_model_dir,
                eval_examples=found.labelled,
                wall_seconds=time.perf_counter() - started,
                engine="none",
                **common,
            )
            os.makedirs(evaluation_dir, exist_ok=True)
            _write_summary(result, settings, evaluation_dir)
            Blessing(False, result.reasons).write(blessing_dir)
            return result
        return _evaluate(
            examples_dir,
            model_dir,
            evaluation_dir,
            blessing_dir,
            settings,
            slice_sample=slice_sample,
            serve=serve,
            baseline_model_dir=baseline_model_dir,
            baseline_serve=baseline_serve,
            notes=notes,
            ignored_baseline=ignored_baseline,
            common=common,
            started=started,
            pipeline_options=pipeline_options,
            engine=engine,
        )


def _unlabelled_note(found: screen.Screen, label_key: str) -> str:
    return (
        f"left out {found.unlabelled} of {found.examples} eval examples with no {label_key!r} label"
        f" (empty or NaN; the Trainer's missing_labels='drop' drops such rows too):"
        f" evaluated on the other {found.labelled}"
    )


def _write_summary(result: EvalResult, settings: EvalSettings, evaluation_dir: str) -> None:
    summary = asdict(result)
    summary["reasons"] = result.reasons
    summary["settings"] = asdict(settings)
    evaluation_artifact.write_summary(evaluation_dir, summary)


def _evaluate(
    examples_dir: str,
    model_dir: str,
    evaluation_dir: str,
    blessing_dir: str,
    settings: EvalSettings,
    *,
    slice_sample: list[bytes],
    serve: Any,
    baseline_model_dir: str,
    baseline_serve: Any,
    notes: list[Check],
    ignored_baseline: bool,
    common: dict[str, Any],
    started: float,
    pipeline_options: Sequence[str],
    engine: str,
) -> EvalResult:
    """The metrics and the gates, on labelled examples and finite predictions."""
    from kubetfx.components.evaluator import engine as in_process

    classes, binary, metric = common["classes"], common["binary"], common["fairness_metric"]
    sample = slice_sample[:8]
    _label_info(sample, settings.label_key, classes, examples_dir)
    check_features(examples_dir, slice_sample, settings.slice_features, "slice_features")
    crossed = [n for c in settings.feature_crosses for n in c]
    check_features(examples_dir, slice_sample, crossed, "feature_crosses")
    config = build_eval_config(settings, len(classes), bool(baseline_model_dir))
    os.makedirs(evaluation_dir, exist_ok=True)
    used, fallback = "tfma", ""
    if engine != "tfma":
        signatures = {CANDIDATE: serve}
        locations = {CANDIDATE: serving_dir(model_dir)}
        if baseline_model_dir:
            signatures[BASELINE] = baseline_serve
            locations[BASELINE] = serving_dir(baseline_model_dir)
        try:
            in_process.analyze(
                config, signatures, examples_dir, evaluation_dir, classes, settings.label_key, locations
            )
            used = "in-process"
        except in_process.Unsupported as err:
            if engine == "in-process":
                raise EvaluationError(f"the in-process metrics cannot evaluate this: {err}") from None
            fallback = str(err)
            print(f"evaluator: computing with TFMA: the in-process path does not support {err}", flush=True)
    if used == "tfma":
        _run_tfma(config, model_dir, baseline_model_dir, examples_dir, evaluation_dir, pipeline_options)
    first = settings.fairness_thresholds[0]
    rows = read_slices(evaluation_dir, classes, binary, first)
    if not rows or rows[0].feature:
        raise EvaluationError(f"TFMA wrote no overall metrics under {evaluation_dir}")
    validation_ok, checks = read_validation(evaluation_dir)
    checks = [*notes, *checks]
    overall = rows[0]
    for name, bound in settings.value_thresholds.items():
        ours = _metric_name(name)
        if not any(c.name == f"value:{ours}" for c in checks) and ours in overall.metrics:
            checks.append(Check(f"value:{ours}", True, f"{ours} {overall.metrics[ours]:.4f} meets {bound:g}"))
    if baseline_model_dir:
        for name, drop in settings.change_thresholds.items():
            ours = _metric_name(name)
            if not any(c.name == f"change:{ours}" for c in checks) and ours in overall.metrics:
                was = overall.baseline.get(ours, float("nan"))
                checks.append(
                    Check(
                        f"change:{ours}",
                        True,
                        f"{ours} {overall.metrics[ours]:.4f} vs baseline {was:.4f}:"
                        f" within the allowed change {drop:g}",
                    )
                )
    elif not ignored_baseline:
        checks.append(Check("baseline", True, "no baseline model: only the absolute thresholds apply"))
    if not validation_ok and not any(not c.passed for c in checks):
        checks.append(Check("tfma", False, "TFMA's validation failed (see validations in the evaluation)"))
    fairness, fairness_checks = fairness_gate(rows, settings, metric)
    checks += fairness_checks
    blessed = all(c.passed for c in checks)
    result = EvalResult(
        blessed=blessed,
        checks=checks,
        slices=rows,
        fairness=fairness,
        confusion=read_confusion(evaluation_dir, len(classes)),
        baseline_uri=baseline_model_dir,
        eval_examples=overall.example_count,
        wall_seconds=time.perf_counter() - started,
        engine=used,
        engine_note=fallback,
        **common,
    )
    _write_summary(result, settings, evaluation_dir)
    Blessing(blessed, result.reasons).write(blessing_dir)
    return result


def _run_tfma(
    config: Any,
    model_dir: str,
    baseline_model_dir: str,
    examples_dir: str,
    evaluation_dir: str,
    pipeline_options: Sequence[str],
) -> None:
    """TFMA's own run on Beam (the reference; also what the in-process path falls back to)."""
    from kubetfx.components.evaluator import beam_path

    beam_path.run_model_analysis(
        config, model_dir, baseline_model_dir, examples_dir, evaluation_dir, pipeline_options
    )


def metrics_for_ui(result: EvalResult) -> Mapping[str, float]:
    """Scalar metrics for the Kubeflow UI's Metrics view."""
    out: dict[str, float] = {
        "example_count": float(result.overall.example_count),
        "blessed": float(result.blessed),
    }
    for name, value in result.overall.metrics.items():
        if "@" not in name and not math.isnan(value):
            out[name] = round(value, 6)
    for feature, entry in result.fairness.items():
        if entry.get("gap") is not None:
            out[f"fairness_gap_{feature}"] = round(entry["gap"], 6)
    return out
