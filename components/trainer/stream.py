"""The built-in model's input as a stream, for splits too large to hold in memory.

Above ``stream_rows`` training rows (a hyper-parameter, default 500,000) the Trainer never
holds a split: it reads the split's TFRecords with ``tf.data``, decodes them 8,192 rows at
a time, encodes each batch with the same code as the in-memory path
(:func:`.model.encode_features`, :func:`.model.encode_labels`), and feeds Keras a
``tf.data`` pipeline: encoded batches, cached to a file on local disk on the first epoch
(so later epochs do not encode again), shuffled in a buffer of 100,000 rows, batched.
Memory then grows with the batch size, the shuffle buffer and the model, plus a few bytes
a row (the held-out mask, the eval split's predictions for its AUC, the rows without a
label), not with the rows' values.

What changes against the in-memory path: shuffling is within the buffer, not over the
whole split; the held-out rows for early stopping are at most 50,000 (as in memory); the
label-leak and ID-like checks look at the first 20,000 rows of each split.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from kubetfx.components.trainer.model import (
    FeatureSpec,
    Fitted,
    HyperParameters,
    Stopper,
    build_training_state,
    encode_features,
    encode_labels,
    holdout,
    holdout_metrics,
    roc_auc,
)

from kubetfx.artifacts import examples

BATCH_ROWS = 8192
SHUFFLE_ROWS = 100_000
SAMPLE_ROWS = 20_000


def columnar_file(examples_dir: str, split: str) -> str | None:
    """The split's columnar copy (None when the Examples were written by another tool)."""
    return examples.columnar_path(examples_dir, split)


def num_rows(examples_dir: str, split: str) -> int:
    """Rows of a split, from its columnar copy's footer (nothing else read)."""
    import pyarrow.parquet as pq

    path = columnar_file(examples_dir, split)
    if path is None:
        raise ValueError(f"{examples_dir}: split {split!r} has no columnar copy")
    return int(pq.ParquetFile(path).metadata.num_rows)


def column_names(examples_dir: str, split: str) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(str(columnar_file(examples_dir, split))).schema_arrow.names)


def batches(examples_dir: str, split: str, columns: list[str] | None = None) -> Iterator[Any]:
    """The split's rows as pyarrow Tables of up to BATCH_ROWS rows, in order.

    Whole rows come from the split's TFRecords, read by ``tf.data`` and decoded a batch at
    a time (the columnar copy is one row group that a reader would decode whole); a few
    named ``columns`` (the label) come from the columnar copy, which reads only those."""
    import pyarrow as pa

    if columns is not None:
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(str(columnar_file(examples_dir, split)))
        for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield pa.Table.from_batches([batch])
        return
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    files = examples.split_files(examples_dir, split)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH_ROWS)
    for batch in records.as_numpy_iterator():
        yield pa.Table.from_batches([decoder.DecodeBatch(list(batch))])


def read_column(examples_dir: str, split: str, column: str) -> Any:
    """One column of a split (a pyarrow Table), e.g. the label."""
    import pyarrow.parquet as pq

    return pq.read_table(str(columnar_file(examples_dir, split)), columns=[column])


def head(examples_dir: str, split: str, rows: int = SAMPLE_ROWS) -> Any:
    """The first ``rows`` rows of a split (for the column checks)."""
    import pyarrow as pa

    taken, size = [], 0
    for table in batches(examples_dir, split):
        taken.append(table)
        size += table.num_rows
        if size >= rows:
            break
    # A batch lacks the columns none of its rows has: null there.
    return pa.concat_tables(taken, promote=True).slice(0, rows)


def missing_label_rows(examples_dir: str, split: str, label: str) -> list[int]:
    """Rows of a split whose label is missing, batch by batch, in the order training reads."""
    from kubetfx.components.trainer.executor import missing_label_rows as missing_in

    found, start = [], 0
    for table in batches(examples_dir, split):
        values = table.column(label).to_pylist() if label in table.column_names else [None] * table.num_rows
        found += [start + row for row in missing_in(values)]
        start += table.num_rows
    return found


def _labelled(
    spec: FeatureSpec, examples_dir: str, split: str, missing: list[int], source: str
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Encoded (inputs, labels) batches of a split, without the rows in ``missing``."""
    from kubetfx.components.trainer.executor import _columns

    dropped = np.asarray(missing, dtype=np.int64)
    start = 0
    for table in batches(examples_dir, split):
        rows = np.arange(start, start + table.num_rows)
        start += table.num_rows
        keep = ~np.isin(rows, dropped)
        if not keep.all():
            import pyarrow as pa

            table = table.filter(pa.array(keep))
        if table.num_rows == 0:
            continue
        columns = _columns(table)
        for feature in spec.features:  # a feature no row of this batch has is not decoded
            columns.setdefault(feature.name, [None] * table.num_rows)
        yield encode_features(spec, columns), encode_labels(spec, columns[spec.label], source)


def fit_streamed(
    model: Any,
    spec: FeatureSpec,
    examples_dir: str,
    missing: dict[str, list[int]],
    train_rows: int,
    params: HyperParameters,
) -> Fitted:
    """:func:`.model.fit`'s contract, reading the splits as a stream. ``train_rows`` is the
    train split's labelled rows; ``missing`` the rows without a label per split (dropped)."""
    import keras
    import tensorflow as tf

    from kubetfx.faults import failpoint

    params = params.sized(train_rows)
    batch = params.batch_size
    if params.patience:
        _, held = holdout(train_rows, params.validation_fraction, params.seed)
    else:
        held = np.arange(0)
    is_held = np.zeros(train_rows, dtype=bool)
    is_held[held] = True
    held_inputs: dict[str, list[np.ndarray]] = {}
    held_labels: list[np.ndarray] = []

    def train_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        position = 0
        for inputs, labels in _labelled(spec, examples_dir, "train", missing.get("train", []), "train split"):
            mask = is_held[position : position + len(labels)]
            position += len(labels)
            if mask.any() and not collected[0]:  # the first pass; later epochs read the cache
                for key, values in inputs.items():
                    held_inputs.setdefault(key, []).append(values[mask])
                held_labels.append(labels[mask])
            # One float32 row per example (categorical ids are small integers, exact in
            # float32): a tf.data element of one tensor, not one per feature.
            packed = np.concatenate([inputs[key][~mask].astype(np.float32) for key in keys], axis=1)
            yield packed, labels[~mask]
        collected[0] = True

    collected = [False]
    keys = [f.key for f in spec.features]
    numeric = [f.kind == "numeric" for f in spec.features]
    signature = (tf.TensorSpec((None, len(keys)), tf.float32), tf.TensorSpec((None,), tf.int32))

    def unpack(packed: Any, labels: Any) -> tuple[dict[str, Any], Any]:
        columns = tf.split(packed, len(keys), axis=1)
        inputs = {
            key: column if is_numeric else tf.cast(column, tf.int32)
            for key, column, is_numeric in zip(keys, columns, numeric, strict=True)
        }
        return inputs, labels

    scratch = tempfile.mkdtemp(prefix="kubetfx-train-cache-")
    try:
        dataset = (
            tf.data.Dataset.from_generator(train_batches, output_signature=signature)
            # Cached as encoded batches, not rows: the cache file's index has an entry per
            # element, which per row would grow with the rows.
            .cache(os.path.join(scratch, "train"))
            .unbatch()
            .shuffle(min(SHUFFLE_ROWS, train_rows), seed=params.seed, reshuffle_each_iteration=True)
            .batch(batch)
            .map(unpack)
            .prefetch(tf.data.AUTOTUNE)
        )
        fit_rows = train_rows - len(held)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-fit_rows // batch)))
        hook = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: failpoint("trainer.fit"))
        callbacks: list[Any] = [hook]
        stopper = Stopper(params.patience or 1, params.min_delta)
        if params.patience:
            # The held-out rows are gathered by the first epoch's pass; the callback reads them then.
            callbacks.insert(0, lazy_holdout(stopper, held_inputs, held_labels))
        keras.utils.set_random_seed(params.seed)
        build_training_state(model, dataset)
        history = model.fit(dataset, epochs=params.epochs, verbose=0, callbacks=callbacks, shuffle=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    epochs_run = len(history.history["loss"])
    if params.patience:
        best = stopper.best_epoch
        stopped, reason = stopper.outcome(epochs_run, params.epochs, len(held))
        metrics = {name: values[best - 1] for name, values in history.history.items()}
        metrics.update(holdout_loss=stopper.best_loss, holdout_accuracy=stopper.best_accuracy)
    else:
        best = epochs_run
        stopped, reason = "fixed", f"patience 0: ran all {params.epochs} epochs (no early stopping)"
        metrics = {name: values[-1] for name, values in history.history.items()}
    scores, labels = [], []
    for inputs, y in _labelled(spec, examples_dir, "eval", missing.get("eval", []), "eval split"):
        scores.append(np.asarray(model.predict_on_batch(inputs)))
        labels.append(y)
    all_scores, all_labels = np.concatenate(scores), np.concatenate(labels)
    val_loss, val_accuracy = holdout_metrics(all_scores, all_labels)
    metrics.update(val_loss=val_loss, val_accuracy=val_accuracy, val_auc=roc_auc(all_labels, all_scores))
    return Fitted(
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        epochs_run=epochs_run,
        best_epoch=best,
        ceiling=params.epochs,
        stopped=stopped,
        reason=reason + " (input streamed)",
        validation_rows=len(held),
        batch_size=batch,
        steps_per_execution=params.steps_per_execution,
        steps=epochs_run * -(-fit_rows // batch),
    )


def lazy_holdout(stopper: Stopper, inputs: dict[str, list[np.ndarray]], labels: list[np.ndarray]) -> Any:
    """The early-stopping callback over held-out rows that the first epoch gathers."""
    import keras
    from kubetfx.components.trainer.model import _stopping_callback

    class LazyHoldout(keras.callbacks.Callback):
        inner: Any = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.inner is None:
                held = {k: np.concatenate(v) for k, v in inputs.items()}
                self.inner = _stopping_callback(stopper, held, np.concatenate(labels))
                self.inner.set_model(self.model)
            self.inner.on_epoch_end(epoch, logs)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.inner is not None:
                self.inner.on_train_end(logs)

    return LazyHoldout()
