"""The Evaluator's in-process metrics engine: TFMA's metrics without TFMA's per-example Beam pipeline.

TFMA computes every metric in two stages. First, *combiners* fold the examples of a
slice into small sufficient statistics: an example count, a calibration histogram
(10,000 prediction buckets per class), confusion counts at a threshold, sums of labels
and predictions, a multi-class confusion matrix, a Keras metric's weights. Then
*derived computations* turn those statistics into the metrics (AUC, precision, the
Fairness Indicators rates, calibration, plots). Almost all of TFMA's time goes to the
first stage, example by example in Python, in Beam.

This module replaces only the first stage. It predicts once per model in large batches,
then computes each combiner's output for each slice with numpy, in the combiner's own
output type; from there on it is TFMA's code again: TFMA's derived computations, diff
metrics, threshold validation (``metrics_validator``) and proto conversion, written to
the same files under the same names, so ``tfma.load_metrics``, ``load_plots``,
``load_validation_result`` and ``load_eval_result`` read them as TFMA's own.

Only the combiners listed in ``_COMBINERS`` are computed here, and only for what this
module can reproduce exactly (no example weights, no class weights, no aggregation, no
confidence intervals, single-valued label and slice features of string or integer type,
labels the model knows, finite predictions). Anything else raises :class:`Unsupported`
and the Evaluator runs TFMA instead. ``tests/components/evaluator/test_fast_path.py``
checks the values against TFMA's on the same model and data, metric by metric and slice
by slice, within 1e-6.

It is one piece because every combiner it replaces is matched against TFMA's as a set: the
list of supported combiners, their numpy versions and the hand-off to TFMA's derived
computations change together when TFMA does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kubetfx import taskenv
from kubetfx.artifacts.examples import split_files, split_pattern

PREDICT_BATCH = 4096
# The engine reads the eval split batch by batch but keeps, per example, its label, each
# model's probabilities and its slicing features (about 100-200 bytes): above this many
# examples the Evaluator goes to TFMA's Beam pipeline instead, whose memory does not grow
# with the examples (``engine="auto"``; ``engine="in-process"`` is refused, naming this).
MAX_ROWS_ENV = taskenv.IN_PROCESS_MAX_ROWS  # also a key of the cluster's kubetfx-settings ConfigMap
DEFAULT_MAX_ROWS = 5_000_000


def max_rows() -> int:
    """The most examples the engine evaluates: ``$KUBETFX_IN_PROCESS_MAX_ROWS``, else 5,000,000."""
    from kubetfx.errors import ConfigError

    raw = os.environ.get(MAX_ROWS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_ROWS_ENV}={raw!r}: use a whole number of examples, 1 or more")
    return int(raw)


class Unsupported(Exception):
    """This evaluation needs TFMA itself (the message says why)."""


@dataclass
class _Data:
    labels: np.ndarray  # int64 class index per example
    predictions: dict[str, np.ndarray]  # model name -> (n, classes) float32
    features: dict[str, np.ndarray]  # slicing feature -> object array (None where missing)


# ---------------------------------------------------------------------- reading and predicting


def _feature_kinds(record: bytes, names: Iterable[str]) -> dict[str, str]:
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(record)
    kinds = {}
    for name in names:
        feature = example.features.feature.get(name)
        kinds[name] = feature.WhichOneof("kind") if feature is not None else "bytes_list"
    return kinds


def _parse(records: Any, kinds: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per feature: (values, row of each value) of a batch (a string tensor) of tf.Examples."""
    import tensorflow as tf

    dtypes = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}
    spec = {name: tf.io.VarLenFeature(dtypes[kind or "bytes_list"]) for name, kind in kinds.items()}
    parsed = tf.io.parse_example(records, spec)
    return {name: (t.values.numpy(), t.indices.numpy()[:, 0]) for name, t in parsed.items()}


def _single(values: np.ndarray, rows: np.ndarray, n: int, name: str, required: bool) -> np.ndarray:
    counts = np.bincount(rows, minlength=n)
    if (counts > 1).any():
        raise Unsupported(f"feature {name!r} has several values in an example")
    if required and (counts == 0).any():
        raise Unsupported(f"some examples have no {name!r}")
    out = np.empty(n, dtype=object)
    out[:] = None
    out[rows] = values
    return out


def load(
    examples_dir: str,
    signatures: dict[str, Any],
    label_key: str,
    slice_keys: Sequence[str],
    classes: Sequence[str],
) -> _Data:
    """Read the eval split once; predict with every model; decode label and slicing features."""
    import tensorflow as tf

    files = split_files(examples_dir, "eval")
    names = [label_key, *dict.fromkeys(k for k in slice_keys if k != label_key)]
    kinds: dict[str, str] = {}
    labels: list[np.ndarray] = []
    features: dict[str, list[np.ndarray]] = {k: [] for k in slice_keys}
    predictions: dict[str, list[np.ndarray]] = {m: [] for m in signatures}
    limit, seen = max_rows(), 0
    # TensorFlow's reader (C++, gzip and CRC checks included) hands over batches as tensors.
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(PREDICT_BATCH)
    for batch in dataset:
        n = int(batch.shape[0])
        seen += n
        if seen > limit:
            raise Unsupported(
                f"an eval split of more than {limit:,} examples ({MAX_ROWS_ENV}; the in-process "
                "metrics keep a few numbers per example, TFMA's Beam pipeline does not)"
            )
        if not kinds:
            kinds = _feature_kinds(batch[0].numpy(), names)
            if kinds[label_key] not in ("bytes_list", "int64_list"):
                raise Unsupported(f"label {label_key!r} is {kinds[label_key]}, not a string or an integer")
            odd = [k for k in slice_keys if kinds[k] not in ("bytes_list", "int64_list")]
            if odd:
                raise Unsupported(f"slicing on non-string, non-integer feature(s) {odd}")
        parsed = _parse(batch, kinds)
        labels.append(_single(*parsed[label_key], n, label_key, required=True))
        for key in slice_keys:
            features[key].append(_single(*parsed[key], n, key, required=False))
        for model, serve in signatures.items():
            out = serve(batch)["probabilities"].numpy()
            if out.ndim != 2 or out.shape[1] != len(classes):
                raise Unsupported(f"model {model!r} answers with probabilities of shape {out.shape}")
            predictions[model].append(out)
    if not labels:
        raise Unsupported("the eval split is empty")
    raw = np.concatenate(labels)
    if kinds[label_key] == "bytes_list":
        index = {c.encode(): i for i, c in enumerate(classes)}
        try:
            label_ids = np.fromiter((index[v] for v in raw), dtype=np.int64, count=len(raw))
        except KeyError as err:
            raise Unsupported(f"label value {err.args[0]!r} is not one of the model's classes") from None
    else:
        label_ids = raw.astype(np.int64)
        if ((label_ids < 0) | (label_ids >= len(classes))).any():
            raise Unsupported("an integer label lies outside the model's class indices")
    probs = {m: np.concatenate(p) for m, p in predictions.items()}
    for model, p in probs.items():
        if not np.isfinite(p).all():
            raise Unsupported(f"model {model!r} predicts non-finite probabilities")
    return _Data(label_ids, probs, {k: np.concatenate(v) for k, v in features.items()})


# ---------------------------------------------------------------------- slices


def _slice_value(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else int(value)


def slices(config: Any, data: _Data) -> list[tuple[tuple[tuple[str, Any], ...], np.ndarray]]:
    """(TFMA slice key, example indices) for every slice the config asks for."""
    n = len(data.labels)
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[tuple[tuple[str, Any], ...], np.ndarray]] = []
    for spec in config.slicing_specs:
        if spec.feature_values or spec.slice_keys_sql:
            raise Unsupported("slicing specs with fixed feature values or SQL")
        keys = tuple(sorted(spec.feature_keys))  # TFMA orders a slice key by column name
        if keys in seen or len(set(keys)) != len(keys):
            raise Unsupported(f"slicing spec {list(spec.feature_keys)} is repeated")
        seen.add(keys)
        if not keys:
            out.append(((), np.arange(n)))
            continue
        present = np.ones(n, dtype=bool)
        codes = np.zeros(n, dtype=np.int64)
        uniques = []
        for key in keys:
            column = data.features[key]
            has = np.fromiter((v is not None for v in column), dtype=bool, count=n)
            present &= has
            filler = column[has][0] if has.any() else 0
            values, inverse = np.unique(np.where(has, column, filler), return_inverse=True)
            codes = codes * len(values) + inverse
            uniques.append(values)
        rows = np.flatnonzero(present)
        if not len(rows):
            continue
        combos, inverse = np.unique(codes[rows], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(combos)))[:-1]
        for code, members in zip(combos, np.split(rows[order], bounds), strict=True):
            key, rest = [], int(code)
            for values in reversed(uniques):
                rest, at = divmod(rest, len(values))
                key.append(_slice_value(values[at]))
            out.append((tuple(zip(keys, reversed(key), strict=True)), members))
    return out


# ---------------------------------------------------------------------- combiners


def _class_of(key: Any) -> int | None:
    sub_key = key.sub_key
    if sub_key is None:
        return None
    if sub_key.k is not None or sub_key.top_k is not None or sub_key.class_id is None:
        raise Unsupported(f"sub key {sub_key} (only class_id binarization is computed here)")
    return int(sub_key.class_id)


def _plain(combiner: Any) -> None:
    """The options no combiner here supports."""
    if getattr(combiner, "_example_weighted", False):
        raise Unsupported("example weights")
    if getattr(combiner, "_class_weights", None):
        raise Unsupported("class weights")
    if getattr(combiner, "_aggregation_type", None):
        raise Unsupported("micro/macro aggregation inside TFMA")


def _binarized(key: Any, data: _Data, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label, prediction) as float64 for the key's model and class, as TFMA flattens them."""
    probs = data.predictions[key.model_name][rows]
    class_id = _class_of(key)
    if class_id is None:
        raise Unsupported(f"{key.name} without a class id")
    labels = (data.labels[rows] == class_id).astype(np.float64)
    return labels, probs[:, class_id].astype(np.float64)


def _example_count(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    _plain(combiner)
    return {k: np.float64(len(rows)) for k in combiner._keys}


def _calibration_histogram(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    from tensorflow_model_analysis.metrics.calibration_histogram import Bucket

    _plain(combiner)
    labels, preds = _binarized(combiner._key, data, rows)
    on = preds if combiner._prediction_based_bucketing else labels
    buckets = combiner._num_buckets
    # TFMA: ((prediction - left) / range * num_buckets) + 1, truncated, clamped to [0, n + 1].
    raw = ((on - combiner._left) / combiner._range * buckets) + 1
    index = np.where(raw < 0, 0, np.where(raw >= buckets + 1, buckets + 1, np.trunc(raw))).astype(np.int64)
    size = buckets + 2
    examples = np.bincount(index, minlength=size).astype(np.float64)
    weighted_labels = np.bincount(index, weights=labels, minlength=size)
    weighted_predictions = np.bincount(index, weights=preds, minlength=size)
    return {
        combiner._key: [
            Bucket(int(i), float(weighted_labels[i]), float(weighted_predictions[i]), float(examples[i]))
            for i in np.flatnonzero(examples)
        ]
    }


def _binary_confusion(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    from tensorflow_model_analysis.contrib.aggregates.binary_confusion_matrices import Matrix, _ThresholdEntry

    _plain(combiner)
    if combiner._example_id_key:
        raise Unsupported("example ids in confusion matrices")
    labels, preds = _binarized(combiner._key, data, rows)
    positive = labels == 1.0
    accumulator = {}
    for threshold in combiner._binary_confusion_matrices._thresholds:
        if not combiner._enable_fractional_labels:
            positive = labels > threshold
        predicted = preds > threshold
        matrix = Matrix(
            tp=float(np.count_nonzero(positive & predicted)),
            tn=float(np.count_nonzero(~positive & ~predicted)),
            fp=float(np.count_nonzero(~positive & predicted)),
            fn=float(np.count_nonzero(positive & ~predicted)),
        )
        accumulator[threshold] = _ThresholdEntry(matrix, [], [], [], [])
    return combiner.extract_output(accumulator)


def _weighted_sums(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    _plain(combiner)
    labels, preds = _binarized(combiner._key, data, rows)
    accumulator = combiner.create_accumulator()
    accumulator.total_weighted_examples = float(len(rows))
    accumulator.total_weighted_labels = float(labels.sum())
    accumulator.total_weighted_predictions = float(preds.sum())
    return combiner.extract_output(accumulator)


def _multi_class_confusion(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    from tensorflow_model_analysis.metrics.multi_class_confusion_matrix_metrics import (
        NO_PREDICTED_CLASS_ID,
        Matrices,
        MatrixEntryKey,
    )

    if combiner._example_weighted:
        raise Unsupported("example weights")
    probs = data.predictions[combiner._key.model_name][rows]
    actual = data.labels[rows]
    predicted = probs.argmax(axis=1)
    top = probs[np.arange(len(rows)), predicted]
    matrices = Matrices()
    for threshold in combiner._thresholds:
        # As in TFMA: once under a threshold, no class is predicted at the later ones.
        predicted = np.where(top <= threshold, NO_PREDICTED_CLASS_ID, predicted)
        width = probs.shape[1] + 1  # predicted ids run from -1 (none) to classes - 1
        counts = np.bincount(actual * width + predicted + 1, minlength=width * probs.shape[1])
        matrices[threshold] = {
            MatrixEntryKey(int(at // width), int(at % width) - 1): float(counts[at])
            for at in np.flatnonzero(counts)
        }
    return {combiner._key: matrices}


def _keras_metrics(combiner: Any, data: _Data, rows: np.ndarray) -> dict[Any, Any]:
    """Keras metrics TFMA folds by their weights; only sparse categorical accuracy here.

    TFMA updates a ``tf_keras`` metric per batch, sums its two float32 weights (matches
    and examples) and reads ``total / count`` back through Keras. Both are counts, exact in
    float32 below 2**24 examples, so the same float32 division gives the same value;
    calling Keras itself would cost seconds of autograph conversion on the first call.
    """
    from tensorflow_model_analysis.metrics import metric_types

    _plain(combiner)
    if combiner._sub_key is not None or len(combiner._output_names) != 1 or combiner._output_names[0]:
        raise Unsupported("Keras metrics on a sub key or a named output")
    if len(rows) >= 2**24:
        raise Unsupported("a slice of 2**24 examples or more (float32 counts)")
    combiner.setup()
    out = {}
    for metric in combiner._metrics[""]:
        if type(metric).__name__ != "SparseCategoricalAccuracy":
            raise Unsupported(f"Keras metric {type(metric).__name__}")
        probs = data.predictions[combiner._model_name][rows]
        matches = np.count_nonzero(probs.argmax(axis=1) == data.labels[rows])
        key = metric_types.MetricKey(
            name=metric.name,
            model_name=combiner._model_name,
            output_name="",
            sub_key=combiner._sub_key,
            example_weighted=combiner._example_weighted,
        )
        out[key] = np.float32(matches) / np.float32(len(rows))
    return out


def _histogram_matrices(derived: Any) -> Any:
    """TFMA's histogram -> binary confusion matrices step, vectorised, or None if not that step.

    TFMA's ``binary_confusion_matrices`` result rebins the 10,000-bucket calibration
    histogram to the thresholds, then sums it from both ends, in Python loops over the
    thresholds (about 0.1 s per class and slice). The same sums, in the same order, with
    numpy; the test against TFMA covers every metric that reads them (AUC above all).
    """
    from tensorflow_model_analysis.metrics import binary_confusion_matrices as bcm
    from tensorflow_model_analysis.metrics import calibration_histogram

    fn = derived.result
    if getattr(fn, "__module__", "") != bcm.__name__ or getattr(fn, "__name__", "") != "result":
        return None
    try:
        cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__), strict=True))
    except (AttributeError, TypeError, ValueError):  # a TFMA whose closure is not as read here
        return None
    if set(cells) != {
        "example_id_key",
        "examples_key",
        "input_metric_key",
        "matrices_key",
        "thresholds",
        "use_histogram",
    }:
        return None
    thresholds = list(cells["thresholds"])
    if not cells["use_histogram"] or (len(thresholds) == 1 and thresholds[0] < 0):
        return None
    epsilon = bcm._EPSILON
    edges = [t + epsilon if t != 0 else t for t in thresholds]
    if thresholds[0] >= 0:
        edges = [-epsilon, *edges]
    if thresholds[-1] < 1.0:
        edges = [*edges, 1.0 + epsilon]
    edges_after_first = np.asarray(edges[1:], dtype=np.float64)
    buckets = calibration_histogram.DEFAULT_NUM_BUCKETS  # what TFMA's rebin assumes
    key_in, key_out = cells["input_metric_key"], cells["matrices_key"]

    def result(metrics: dict[Any, Any]) -> dict[Any, Any]:
        histogram = metrics[key_in]
        ids = np.fromiter((b.bucket_id for b in histogram), dtype=np.int64, count=len(histogram))
        labels = np.fromiter((b.weighted_labels for b in histogram), dtype=np.float64, count=len(histogram))
        examples = np.fromiter(
            (b.weighted_examples for b in histogram), dtype=np.float64, count=len(histogram)
        )
        # rebin: a bucket's left edge, then the new bucket it falls in
        with np.errstate(invalid="ignore"):
            left = np.where(
                ids == 0,
                -np.inf,
                np.where(ids >= buckets + 1, np.inf, (ids - 1) / buckets * (1.0 - 0.0) + 0.0),
            )
        to = np.searchsorted(edges_after_first, left, side="right")
        n = len(edges)
        pos = np.bincount(to, weights=labels, minlength=n)
        total = np.bincount(to, weights=examples, minlength=n)
        # the per-bucket negatives as TFMA computes them: examples - labels of the rebinned bucket
        neg = total - pos
        tp = np.cumsum(pos[::-1])[::-1]
        fp = np.cumsum(neg[::-1])[::-1]
        tn = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
        fn = np.concatenate([[0.0], np.cumsum(pos)[:-1]])
        offset = 1 if (thresholds[0] >= 0 or len(thresholds) == 1) and n > 1 else 0
        tp, fp, tn, fn = (a[offset : offset + len(thresholds)].tolist() for a in (tp, fp, tn, fn))
        for i, t in enumerate(thresholds):
            if t >= 1.0 + epsilon:
                tp[i], fp[i], fn[i], tn[i] = 0.0, 0.0, tp[0], fp[0]
        return {key_out: bcm.Matrices(thresholds, tp, tn, fp, fn)}

    return result


def _combiner_table() -> dict[type, Any]:
    from tensorflow_model_analysis.metrics import (
        binary_confusion_matrices,
        calibration,
        calibration_histogram,
        example_count,
        multi_class_confusion_matrix_metrics,
        tf_metric_wrapper,
    )

    return {
        example_count._ExampleCountCombiner: _example_count,
        calibration_histogram._CalibrationHistogramCombiner: _calibration_histogram,
        binary_confusion_matrices._BinaryConfusionMatrixCombiner: _binary_confusion,
        calibration._WeightedLabelsPredictionsExamplesCombiner: _weighted_sums,
        multi_class_confusion_matrix_metrics._MultiClassConfusionMatrixCombiner: _multi_class_confusion,
        tf_metric_wrapper._CompilableMetricsCombiner: _keras_metrics,
    }


# ---------------------------------------------------------------------- the run


def check_config(config: Any) -> None:
    """Raise :class:`Unsupported` for an EvalConfig this path does not compute."""
    options = config.options
    if options.compute_confidence_intervals.value or options.min_slice_size.value > 1:
        raise Unsupported("confidence intervals or a minimum slice size")
    if config.cross_slicing_specs:
        raise Unsupported("cross-slice comparisons")
    for spec in config.model_specs:
        if spec.example_weight_key or spec.example_weight_keys or spec.label_keys or spec.prediction_keys:
            raise Unsupported(f"model spec {spec.name!r} has weights or several outputs")
        if spec.prediction_key != "probabilities":
            raise Unsupported(f"model spec {spec.name!r} predicts {spec.prediction_key!r}")
    for spec in config.metrics_specs:
        if spec.query_key or spec.output_names or spec.aggregate.ListFields():
            raise Unsupported("query keys, named outputs or aggregation in a metrics spec")
        if spec.example_weights.ListFields() and spec.example_weights.weighted:
            raise Unsupported("weighted metrics")


def analyze(
    config: Any,
    signatures: dict[str, Any],
    examples_dir: str,
    output_dir: str,
    classes: Sequence[str],
    label_key: str,
    model_locations: dict[str, str],
) -> dict[str, Any]:
    """Compute the metrics, plots and validation TFMA would, and write them as TFMA does.

    ``config`` is the EvalConfig as built for ``run_model_analysis``; ``signatures`` maps
    ``"candidate"`` (and ``"baseline"``) to a function calling its serving signature on a batch of
    serialized tf.Examples. Returns counts for the log.
    """
    import tensorflow as tf
    from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator as mpv
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_specs, metric_types
    from tensorflow_model_analysis.utils import config_util, model_util
    from tensorflow_model_analysis.writers import eval_config_writer
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

    config = config_util.update_eval_config_with_defaults(config, has_baseline=len(signatures) > 1)
    check_config(config)
    # TFMA names a lone model "" in its keys; the baseline is the spec marked as one.
    baseline_spec = model_util.get_baseline_model_spec(config)
    by_spec, where = {}, {}
    for spec in config.model_specs:
        role = "baseline" if spec.is_baseline else "candidate"
        if role not in signatures:
            raise Unsupported(f"model spec {spec.name!r}: no {role} model loaded")
        by_spec[spec.name] = signatures[role]
        where[spec.name] = model_locations[role]
    if len(by_spec) != len(signatures):
        raise Unsupported("model specs and loaded models differ")
    computations = mpv._filter_and_separate_computations(
        metric_specs.to_computations(config.metrics_specs, eval_config=config)
    )
    if computations.cross_slice_computations or computations.ci_derived_computations:
        raise Unsupported("cross-slice or confidence-interval metrics")
    table = _combiner_table()
    plans = []
    for computation in computations.non_derived_computations:
        compute = table.get(type(computation.combiner))
        if compute is None:
            raise Unsupported(f"TFMA combiner {type(computation.combiner).__name__}")
        odd = [
            type(p).__name__
            for p in computation.preprocessors or ()
            if type(p).__name__ != "StandardMetricInputsPreprocessor"
        ]
        if odd:
            raise Unsupported(f"preprocessors {odd}")
        plans.append((computation.combiner, compute))
    derived = [_histogram_matrices(c) or c.result for c in computations.derived_computations]
    slice_keys = sorted({k for spec in config.slicing_specs for k in spec.feature_keys})
    data = load(examples_dir, by_spec, config.model_specs[0].label_key, slice_keys, classes)
    baseline = baseline_spec.name if baseline_spec else None

    metrics_out, plots_out, attributions_out = [], [], []
    validation_combiner = writer.CombineValidations(config)
    validation = None
    sliced = slices(config, data)
    for slice_key, rows in sliced:
        values: dict[Any, Any] = {}
        for combiner, compute in plans:
            values.update(compute(combiner, data, rows))
        for derive in derived:
            values.update(derive(values))
        if baseline:
            diffs = {}
            for key, value in values.items():
                if mpv._is_private_metrics(key) or key.is_diff or key.model_name == baseline:
                    continue
                base_key = key.make_baseline_key(baseline)
                if base_key in values and mpv._is_metric_diffable(value):
                    diffs[key.make_diff_key()] = value - values[base_key]
            values.update(diffs)
        _, values = mpv._remove_private_metrics(slice_key, values)
        metrics = mpv._filter_by_key_type((slice_key, values), metric_types.MetricKey)
        plots = mpv._filter_by_key_type((slice_key, values), metric_types.PlotKey)
        attributions = mpv._filter_by_key_type((slice_key, values), metric_types.AttributionsKey)
        metrics_out.append(writer.convert_slice_metrics_to_proto(metrics, add_metrics_callbacks=[]))
        plots_out.append(writer.convert_slice_plots_to_proto(plots, add_metrics_callbacks=[]))
        attributions_out.append(writer.convert_slice_attributions_to_proto(attributions))
        checked = metrics_validator.validate_metrics(metrics, config)
        validation = validation_combiner.add_input(validation, checked)
    validation = validation_combiner.extract_output(validation)

    os.makedirs(output_dir, exist_ok=True)
    for name, protos in (("metrics", metrics_out), ("plots", plots_out), ("attributions", attributions_out)):
        with tf.io.TFRecordWriter(os.path.join(output_dir, f"{name}-00000-of-00001.tfrecord")) as out:
            for proto in protos:
                out.write(proto.SerializeToString())
    with tf.io.TFRecordWriter(os.path.join(output_dir, "validations.tfrecord")) as out:
        out.write(validation.SerializeToString())
    pattern = split_pattern(examples_dir, "eval")
    with open(os.path.join(output_dir, "eval_config.json"), "w") as out:
        out.write(eval_config_writer._serialize_eval_run(config, pattern, "tfrecords", where))
    return {"examples": int(len(data.labels)), "slices": len(sliced)}
