"""Export a trained built-in model as a TensorFlow SavedModel whose serving signature
takes serialized tf.Example (what TFMA and TF Serving call).

The signature parses each feature, replays the :class:`FeatureSpec` preprocessing in
TensorFlow ops (standardization, vocabulary lookup) and calls the Keras model, so
serving sees exactly what training saw. The SavedModel holds the signature and the
model's weights only (no optimizer state, no training functions); the Keras model itself
is saved beside it as ``model.keras``. TensorFlow backend only.
"""

from __future__ import annotations

from typing import Any

from kubetfx.components.trainer.model import FeatureSpec

SIGNATURE = "serving_default"


def export_serving(model: Any, spec: FeatureSpec, path: str) -> None:
    """Write ``path`` as a SavedModel with a ``serving_default(examples: string[batch])``."""
    import tensorflow as tf

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            # The weights the signature reads, not the Keras model: tracking the model would
            # save its optimizer's state and every function Keras traced for training, none
            # of which serving calls (the export took twice as long, and so does each load
            # by the Evaluator, the Pusher and a model server). A weight the signature reads
            # but this list missed would make the save fail, not the model wrong.
            self.model_weights = list(model.weights)
            self.tables = {}
            for feature in spec.features:
                if feature.kind == "categorical":
                    keys = tf.constant(feature.vocabulary or [""], dtype=tf.string)
                    ids = tf.range(1, len(feature.vocabulary or [""]) + 1, dtype=tf.int64)
                    self.tables[feature.key] = tf.lookup.StaticHashTable(
                        tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=0
                    )
            self.classes = tf.constant(spec.classes)

        # autograph=False: the loop below runs over the spec's features while tracing (no
        # tensor-dependent Python control flow), and Keras 3 needs no conversion; autograph
        # would parse and rewrite this function's and Keras' source (half the export's time).
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False)
        def serve(self, examples: Any) -> dict[str, Any]:
            dtypes = {"int": tf.int64, "float": tf.float32, "bytes": tf.string}
            wanted = {f.name: tf.io.VarLenFeature(dtypes[f.dtype]) for f in spec.features}
            parsed = tf.io.parse_example(examples, wanted)
            batch = tf.shape(examples)[0]
            inputs = {}
            for feature in spec.features:
                # One value per example; a missing or empty feature becomes the default
                # (a column of defaults is appended, then the first column is kept).
                sparse = parsed[feature.name]
                if feature.dtype == "int":
                    sparse = tf.sparse.map_values(tf.cast, sparse, tf.float32)
                default = float("nan") if feature.kind == "numeric" else ""
                dense = tf.sparse.to_dense(sparse, default_value=default)
                dense = tf.concat([dense, tf.fill([batch, 1], tf.constant(default, dense.dtype))], axis=1)
                dense = tf.reshape(dense[:, :1], [-1, 1])  # static shape (batch, 1) for Keras
                if feature.kind == "numeric":
                    scaled = (dense - feature.mean) / (feature.std or 1.0)
                    inputs[feature.key] = tf.where(tf.math.is_nan(scaled), tf.zeros_like(scaled), scaled)
                else:
                    inputs[feature.key] = tf.cast(self.tables[feature.key].lookup(dense), tf.int32)
            scores = model(inputs, training=False)
            if spec.binary:
                positive = tf.reshape(scores, [-1])
                probabilities = tf.stack([1.0 - positive, positive], axis=1)
            else:
                probabilities = scores
            class_ids = tf.argmax(probabilities, axis=1)
            return {
                "probabilities": probabilities,
                "class_ids": class_ids,
                "classes": tf.gather(self.classes, class_ids),
                # Every class name per example (the Estimator convention TFMA reads to
                # turn string labels into class ids).
                "all_classes": tf.tile(tf.expand_dims(self.classes, 0), [batch, 1]),
            }

    module = Serving()
    tf.saved_model.save(module, path, signatures={SIGNATURE: module.serve})
