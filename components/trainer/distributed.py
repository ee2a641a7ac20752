"""Training the built-in model on several workers: ``MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (it hands the loss a
per-replica value: ``Attempt to convert a value (PerReplica:{...}) ... to a Tensor``), so
the Trainer runs its own loop there: the same Keras 3 model, optimizer and loss, one
``strategy.run`` per step, gradients summed across workers by the optimizer (Keras 3's
TensorFlow optimizer all-reduces them in a replica context), every worker ending with the
same weights. tf_keras's ``fit`` also trains under the strategy, but it would mean a second
model definition (tf_keras layers) and about 15 s more graph conversion per run here; the
loop keeps one model, saved as ``model.keras`` like the single-process one.

Early stopping works here too, with the same rule as :func:`.model.fit` (a held-out part
of the train split, ``patience``, best weights restored): each worker measures the held-out
loss with the shared weights, and the workers average it across the cluster (one
all-reduce per epoch), so they all stop at the same epoch; a worker that stopped alone
would leave the others waiting in their next all-reduce.

``batch_size`` is the global batch, split evenly across the workers; each epoch runs the
same whole number of steps on every worker (the last partial batch is dropped: a worker
with a step less would leave the others waiting).

TensorFlow only (``strategy.run`` and ``tf.data``); the executor calls this when
``TF_CONFIG`` names a cluster.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from kubetfx.components.trainer.model import (
    Fitted,
    HyperParameters,
    Stopper,
    holdout,
    holdout_metrics,
    roc_auc,
)


def cluster_role(tf_config: str | None = None) -> tuple[str, int, bool, int]:
    """(task type, task index, whether this worker is the chief, number of workers) from
    ``TF_CONFIG``: the chief is the ``chief`` task, else worker 0 (TensorFlow's rule)."""
    config = json.loads(tf_config if tf_config is not None else os.environ.get("TF_CONFIG", "") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    kind, index = str(task.get("type", "worker")), int(task.get("index", 0))
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return kind, index, chief, max(workers, 1)


def fit_multi_worker(
    strategy: Any,
    model: Any,
    train_inputs: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval_inputs: dict[str, np.ndarray],
    eval_labels: np.ndarray,
    params: HyperParameters,
    binary: bool,
) -> Fitted:
    """:func:`.model.fit`'s contract under ``strategy`` (built with the model in its scope)."""
    import keras
    import tensorflow as tf

    from kubetfx.faults import failpoint

    params = params.sized(len(train_labels))
    batch = params.batch_size
    replicas = strategy.num_replicas_in_sync
    if batch % replicas:
        batch += replicas - batch % replicas  # an even split across the workers
    if params.patience:
        kept, held = holdout(len(train_labels), params.validation_fraction, params.seed)
    else:
        kept, held = np.arange(len(train_labels)), np.arange(0)
    fit_inputs = {k: v[kept] for k, v in train_inputs.items()}
    fit_labels = train_labels[kept]
    steps = len(fit_labels) // batch
    if steps < 1:
        from kubetfx.errors import ParameterError

        raise ParameterError(
            f"batch_size {batch} is larger than the {len(fit_labels)} training rows: "
            "on several workers every worker needs whole batches"
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    dataset = (
        tf.data.Dataset.from_tensor_slices((fit_inputs, fit_labels))
        .shuffle(len(fit_labels), seed=params.seed, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)
        .with_options(options)
    )
    distributed = strategy.experimental_distribute_dataset(dataset)
    loss_fn = (
        keras.losses.BinaryCrossentropy(reduction=None)
        if binary
        else keras.losses.SparseCategoricalCrossentropy(reduction=None)
    )
    optimizer = model.optimizer

    def replica_step(inputs: Any, labels: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            scores = model(inputs, training=True)
            per_example = loss_fn(tf.reshape(labels, [-1, 1]) if binary else labels, scores)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        if binary:
            predicted = tf.cast(tf.reshape(scores, [-1]) > 0.5, tf.int32)
        else:
            predicted = tf.cast(tf.argmax(scores, axis=1), tf.int32)
        correct = tf.reduce_sum(tf.cast(predicted == tf.cast(labels, tf.int32), tf.float32))
        return loss, correct

    @tf.function
    def train_step(iterator: Any) -> tuple[Any, Any]:
        loss, correct = strategy.run(replica_step, args=next(iterator))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    @tf.function
    def forward(inputs: Any) -> Any:
        return model(inputs, training=False)

    def scores_of(inputs: dict[str, np.ndarray]) -> np.ndarray:
        rows = len(next(iter(inputs.values())))
        parts = [
            forward({k: tf.constant(v[i : i + 8192]) for k, v in inputs.items()}).numpy()
            for i in range(0, rows, 8192)
        ]
        return np.concatenate(parts)

    @tf.function
    def cluster_mean(value: Any) -> Any:
        per_replica = strategy.run(lambda: tf.identity(value))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    keras.utils.set_random_seed(params.seed)
    if not optimizer.built:
        # Its variables now, not in the step's first trace: TensorFlow traces a function
        # whose first trace creates variables twice (see model.build_training_state).
        with strategy.scope():
            optimizer.build(model.trainable_variables)
    stopper = Stopper(params.patience or 1, params.min_delta)
    history: list[tuple[float, float]] = []
    best_weights = None
    epochs_run = 0
    for epoch in range(1, params.epochs + 1):
        iterator = iter(distributed)
        loss_sum, correct_sum = 0.0, 0.0
        for _ in range(steps):
            loss, correct = train_step(iterator)
            loss_sum += float(loss)
            correct_sum += float(correct)
        history.append((loss_sum / steps, correct_sum / (steps * batch)))
        epochs_run = epoch
        failpoint("trainer.fit")
        if not params.patience:
            continue
        held_loss, held_accuracy = holdout_metrics(
            scores_of({k: v[held] for k, v in train_inputs.items()}), train_labels[held]
        )
        # Every worker acts on the cluster's mean, so all stop at the same epoch.
        held_loss = float(cluster_mean(tf.constant(held_loss, tf.float32)))
        improved, stop = stopper.update(epoch, held_loss, held_accuracy)
        if improved:
            best_weights = model.get_weights()
        if stop:
            break
    if params.patience:
        if best_weights is not None:
            model.set_weights(best_weights)
        best = stopper.best_epoch
        stopped, reason = stopper.outcome(epochs_run, params.epochs, len(held))
        metrics = {"holdout_loss": stopper.best_loss, "holdout_accuracy": stopper.best_accuracy}
    else:
        best = epochs_run
        stopped, reason = "fixed", f"patience 0: ran all {params.epochs} epochs (no early stopping)"
        metrics = {}
    metrics.update(loss=history[best - 1][0], accuracy=history[best - 1][1])
    scores = scores_of(eval_inputs)
    val_loss, val_accuracy = holdout_metrics(scores, eval_labels)
    metrics.update(val_loss=val_loss, val_accuracy=val_accuracy, val_auc=roc_auc(eval_labels, scores))
    return Fitted(
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        epochs_run=epochs_run,
        best_epoch=best,
        ceiling=params.epochs,
        stopped=stopped,
        reason=reason + f" ({replicas} workers, global batch {batch})",
        validation_rows=len(held),
        batch_size=batch,
        steps_per_execution=1,
        steps=epochs_run * steps,
    )


def weights_digest(model: Any) -> str:
    """A SHA-256 of the model's weights, to compare workers' (and runs') models."""
    import hashlib

    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
