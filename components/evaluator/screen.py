"""One pass over the eval split before any metric: which examples have a label, and
whether each model's predictions on them are finite numbers.

* An example whose label is missing (no value, an empty string or NaN: what ExampleGen
  writes for an empty CSV cell, and what the Trainer's ``missing_labels="drop"`` leaves
  out of training) is left out of the evaluation and counted; it is never scored as an
  error. When some are missing, the labelled examples are copied to a temporary eval
  split (TFX's layout) that both engines then read.
* A model that answers NaN or infinity (a diverged training) cannot be evaluated: TFMA
  fails deep in its combiners on such predictions. The count of such examples is what
  the Evaluator reports instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kubetfx.artifacts.examples import split_files
from kubetfx.artifacts.layout import EXAMPLES_FILE, split_dir

BATCH = 4096


@dataclass
class Screen:
    """What the pass found."""

    examples: int  # eval examples read
    unlabelled: int  # of them, examples without a label (left out)
    non_finite: dict[str, int] = field(default_factory=dict)  # model -> labelled examples with NaN/inf

    @property
    def labelled(self) -> int:
        return self.examples - self.unlabelled


def _label_kind(records: Any, label_key: str) -> str | None:
    """The tf.Example kind of the label in a batch (None when no example has a value)."""
    from tensorflow.core.example import example_pb2

    for record in records.numpy():
        feature = example_pb2.Example.FromString(record).features.feature.get(label_key)
        if feature is not None and feature.WhichOneof("kind"):
            return feature.WhichOneof("kind")
    return None


def _labelled(records: Any, label_key: str, kind: str | None) -> np.ndarray:
    """Per example of the batch: whether its label has a value (not empty, not NaN)."""
    import tensorflow as tf

    n = int(records.shape[0])
    if kind is None:
        return np.zeros(n, dtype=bool)
    dtype = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}[kind]
    parsed = tf.io.parse_example(records, {label_key: tf.io.VarLenFeature(dtype)})[label_key]
    values, rows = parsed.values.numpy(), parsed.indices.numpy()[:, 0]
    if kind == "bytes_list":
        good = np.fromiter((len(v) > 0 for v in values), dtype=bool, count=len(values))
    elif kind == "float_list":
        good = ~np.isnan(values)
    else:
        good = np.ones(len(values), dtype=bool)
    return np.bincount(rows[good], minlength=n) > 0


def screen(examples_dir: str, label_key: str, models: dict[str, Callable[[Any], Any]]) -> Screen:
    """Count the eval examples without a label and, per model, the labelled ones whose
    predicted probabilities are not all finite. ``models`` maps a name to a function
    calling the serving signature on a batch of serialized tf.Examples."""
    import tensorflow as tf

    files = split_files(examples_dir, "eval")
    found = Screen(0, 0, {name: 0 for name in models})
    kind: str | None = None
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH):
        kind = kind or _label_kind(batch, label_key)
        labelled = _labelled(batch, label_key, kind)
        found.examples += len(labelled)
        found.unlabelled += int((~labelled).sum())
        for name, serve in models.items():
            probabilities = np.asarray(serve(batch)["probabilities"].numpy())
            finite = np.isfinite(probabilities.reshape(len(labelled), -1)).all(axis=1)
            found.non_finite[name] += int((labelled & ~finite).sum())
    return found


def write_labelled(examples_dir: str, label_key: str, out_dir: str) -> str:
    """Copy the eval split's labelled examples to ``out_dir`` (TFX's layout); return it."""
    import tensorflow as tf

    split = split_dir(out_dir, "eval")
    os.makedirs(split, exist_ok=True)
    kind: str | None = None
    path = os.path.join(split, EXAMPLES_FILE)
    with tf.io.TFRecordWriter(path, options="GZIP") as out:
        files = split_files(examples_dir, "eval")
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH):
            kind = kind or _label_kind(batch, label_key)
            for record in batch.numpy()[_labelled(batch, label_key, kind)]:
                out.write(record)
    return out_dir


def describe_non_finite(role: str, count: int, of: int) -> str:
    """``the model's predictions are NaN or infinite on 3 of 68 eval examples``."""
    return f"{role} predictions are NaN or infinite on {count} of {of} labelled eval examples"
