"""Checks of the training columns before training: probable label leaks and ID-like columns.

Plain numpy, no TensorFlow. Each check looks at one feature at a time:

- **Label leak**: a one-feature rule learned on the train split (the majority class per
  value, for a numeric feature of the nearest value seen in train; a missing value is a
  value of its own) is scored on the eval split. A balanced accuracy (the mean of the
  per-class recalls) of at least :data:`LEAK_BALANCED_ACCURACY` says the feature alone
  gives the label away on rows it has not seen, which a real predictor rarely does and a
  copy or consequence of the label does. Scoring on held-out rows keeps ID columns (a
  perfect rule on the rows it learned from, chance on new ones) from looking like leaks;
  balanced accuracy keeps an imbalanced label (99% one class) from making every feature
  look perfect.
- **ID-like column**: every row of the data has its own value (text, or integers that all
  differ and fill most of their range, like a counter). Measurements such as floats are
  left alone: they are often distinct per row without being identifiers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEAK_BALANCED_ACCURACY = 0.98  # one feature alone, on the eval split
LEAK_MIN_EVAL_ROWS = 20  # fewer held-out rows say too little to warn
ID_MIN_ROWS = 20  # a handful of rows is unique per row by chance
ID_MIN_PRESENT = 0.9  # an ID is filled in on (almost) every row
MISSING = object()  # a missing value, a category of its own


@dataclass
class Finding:
    """One warning about one feature: what was measured, in words a user can act on."""

    feature: str
    kind: str  # "label_leak" | "id_like"
    score: float
    message: str


def first_value(value: Any) -> Any:
    """A cell's one value (tf.Example features are lists); MISSING when empty, None or NaN."""
    if isinstance(value, list | tuple | np.ndarray):
        value = value[0] if len(value) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def first_values(values: Sequence[Any]) -> list[Any]:
    """:func:`first_value` of each cell of one column. A column read from Arrow has one type,
    so a flat column of numbers or text (ExampleGen's columnar copy) takes a quicker pass."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, int | float | str):
        return [MISSING if v is None or v != v else v for v in values]  # v != v: NaN
    return [first_value(v) for v in values]


def balanced_accuracy(truth: Sequence[int], predicted: Sequence[int]) -> float:
    """The mean over the classes present in ``truth`` of the share of their rows predicted right."""
    truth_a, predicted_a = np.asarray(truth), np.asarray(predicted)
    recalls = [float((predicted_a[truth_a == c] == c).mean()) for c in np.unique(truth_a)]
    return float(np.mean(recalls)) if recalls else 0.0


def one_feature_rule_score(
    kind: str,
    train_values: list[Any],
    train_labels: Sequence[int],
    eval_values: list[Any],
    eval_labels: Sequence[int],
) -> float:
    """Balanced accuracy on the eval split of a one-feature rule learned on the train split.

    The rule predicts the majority class of the train rows with the same value (a missing
    value is a value of its own); for a numeric feature, of the nearest value seen in train.
    A value train never saw (a new category) gets the train split's majority class."""
    train_y = np.asarray(train_labels, dtype=np.int64)
    overall = int(np.bincount(train_y).argmax())
    present = np.array([v is not MISSING for v in train_values])
    eval_present = np.array([v is not MISSING for v in eval_values], dtype=bool)
    predicted = np.full(len(eval_values), overall, dtype=np.int64)
    if (~present).any():  # missing values: the majority class of the train rows missing it
        predicted[~eval_present] = int(np.bincount(train_y[~present]).argmax())
    if kind == "numeric" and present.any():
        values = np.array([v for v in train_values if v is not MISSING], dtype=np.float64)
        distinct, inverse = np.unique(values, return_inverse=True)
        counts = np.zeros((len(distinct), int(train_y.max()) + 1), dtype=np.int64)
        np.add.at(counts, (inverse, train_y[present]), 1)
        majority = counts.argmax(axis=1)
        wanted = np.array([v for v in eval_values if v is not MISSING], dtype=np.float64)
        right = np.clip(np.searchsorted(distinct, wanted), 0, len(distinct) - 1)
        left = np.clip(right - 1, 0, len(distinct) - 1)
        nearer = np.where(np.abs(wanted - distinct[left]) <= np.abs(distinct[right] - wanted), left, right)
        predicted[eval_present] = majority[nearer]
    elif present.any():
        votes: dict[Any, Counter[int]] = {}
        for value, label in zip(train_values, train_y, strict=True):
            if value is not MISSING:
                votes.setdefault(value, Counter())[int(label)] += 1
        rule = {value: counts.most_common(1)[0][0] for value, counts in votes.items()}
        for row, value in enumerate(eval_values):
            if value is not MISSING:
                predicted[row] = rule.get(value, overall)
    return balanced_accuracy(eval_labels, predicted)


def label_leak(
    feature: str,
    kind: str,
    train_values: list[Any],
    train_labels: Sequence[int],
    eval_values: list[Any],
    eval_labels: Sequence[int],
    label: str,
    score: float | None = None,
) -> Finding | None:
    """A :class:`Finding` when ``feature`` alone predicts the label almost perfectly on eval
    (``score``: the one-feature rule's balanced accuracy, when already computed)."""
    if len(eval_labels) < LEAK_MIN_EVAL_ROWS or len(set(int(y) for y in eval_labels)) < 2:
        return None
    if score is None:
        score = one_feature_rule_score(kind, train_values, train_labels, eval_values, eval_labels)
    if score < LEAK_BALANCED_ACCURACY:
        return None
    return Finding(
        feature=feature,
        kind="label_leak",
        score=round(score, 4),
        message=(
            f"probable label leak: feature {feature!r} alone predicts label {label!r} with balanced "
            f"accuracy {score:.3f} on the eval split (a one-feature rule learned on the train split); "
            "if its value is only known once the label is (a copy or a consequence of it), leave it "
            f"out with exclude_features=[{feature!r}]"
        ),
    )


def id_like(feature: str, kind: str, dtype: str, values: list[Any]) -> Finding | None:
    """A :class:`Finding` when every row has its own value of ``feature`` (an identifier)."""
    if dtype == "float" or len(values) < ID_MIN_ROWS:
        return None
    present = [v for v in values if v is not MISSING]
    if len(present) < ID_MIN_PRESENT * len(values) or len(set(present)) != len(present):
        return None
    if dtype == "int":
        numbers = [int(v) for v in present]
        if max(numbers) - min(numbers) + 1 > 2 * len(numbers):
            return None  # distinct, but spread out like a measurement, not a counter
    share = len(present) / len(values)
    return Finding(
        feature=feature,
        kind="id_like",
        score=round(share, 4),
        message=(
            f"ID-like column: feature {feature!r} has a different value on every row "
            f"({len(present)} rows{'' if share == 1 else f', {share:.0%} of them filled in'}); "
            "the model can only memorize it, not learn from it; leave it out with "
            f"exclude_features=[{feature!r}]"
        ),
    )
