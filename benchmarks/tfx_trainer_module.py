"""TFX Trainer module file for the TFX comparison benchmark (``tfx_pipeline.py``).

Runs in the benchmark-only TFX environment, inside TFX's Trainer (TFX installs this file as
an ephemeral wheel, as it does any ``module_file``): never imported by kubetfx, and it
imports nothing of kubetfx, so what TFX runs is TFX plus this file. That is why it is a
copy of kubetfx's built-in Trainer model (``components/trainer/model.py`` and
``export.py``) rather than an import of it; ``tests/benchmarks/test_tfx_trainer_module.py``
keeps the copy in step (features, encoding, layers, compile and fit arguments, the serving
signature's answers), so the two pipelines differ in their orchestration and components,
not in the model:

* both splits read into memory (TFX's data accessor, Arrow record batches);
* numeric features standardized (mean and standard deviation of the train split;
  kubetfx takes them from StatisticsGen's statistics of the same split), missing -> 0;
  categorical features one-hot over the schema's vocabulary (index 0: missing/unknown),
  embedded above 16 values; features left out of the ``TRAINING`` environment skipped;
  Keras input names made safe the same way;
* the same Keras 3 MLP (Dense 32 -> Dense 16, ReLU, optional dropout; softmax over the
  label's classes, or one sigmoid unit for two), Adam, sparse categorical (or binary)
  cross-entropy, seed 42, TensorFlow's ops deterministic, ``fit`` on numpy arrays with the
  eval split as validation data, shuffled, in batches;
* the same export: a SavedModel under ``Format-Serving`` whose ``serving_default`` parses
  serialized tf.Examples, replays the preprocessing and answers ``probabilities``,
  ``class_ids``, ``classes`` and ``all_classes`` (what TFMA reads), plus the
  ``keras/model.keras`` file and the preprocessing constants as JSON.

Hyper-parameters come from the Trainer's ``custom_config`` (the pipeline passes epochs 30,
batch 32, learning rate 0.01).

Three differences stay, on purpose:

* how long and in what batches it trains: every epoch at batch 32, as TFX's templates
  train, where kubetfx's Trainer takes ``epochs`` as a ceiling (it stops once the loss on
  a held-out tenth of the train split stops improving, and keeps the best epoch's weights)
  and chooses its batch size for the data's size; the benchmark scores both models on the
  same held-out rows, so what that costs or gains in quality is printed beside the time;
* how ``fit`` runs, not what it computes: Keras' defaults (one batch per ``tf.function``
  call, validation in training-sized batches), as TFX's templates write a module file,
  where kubetfx's Trainer runs 32 steps per call and validates in batches of 1,024 (the
  same steps and weights, faster: that speed is part of what the benchmark measures,
  docs/benchmarks.md);
* a string feature whose schema has no vocabulary gets the Trainer's from StatisticsGen's
  top values, which a TFX ``run_fn`` is not given; here it has none (every value is
  "unknown"). The benchmark's schemas give every string feature a domain.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import numpy as np

ONE_HOT_MAX = 16  # vocabularies up to this size are one-hot encoded, larger ones embedded
OUTPUT_LAYERS = ("probability", "probabilities")
# The Trainer's HyperParameters defaults.
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 32,
    "learning_rate": 0.01,
    "hidden_units": [32, 16],
    "dropout": 0.0,
    "seed": 42,
}


def _first(value: Any, default: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return value[0] if len(value) else default
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_text(value: Any) -> str | None:
    first = _first(value, None)
    if isinstance(first, float) and math.isinf(first):
        return None
    return _text(first)


def _safe_names(names: list[str]) -> dict[str, str]:
    """Column names -> distinct names Keras accepts (the Trainer's ``safe_names``)."""
    taken: set[str] = set(OUTPUT_LAYERS)
    safe = {}
    for name in names:
        base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", name)).strip("_") or "feature"
        if not base[0].isalpha():
            base = f"f_{base}"
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate.lower())
        safe[name] = candidate
    return safe


def _key(feature: dict) -> str:
    return feature["input_name"] or feature["name"]


def _read(fn_args: Any, files: list[str], schema: Any) -> Any:
    import pyarrow as pa
    from tfx_bsl.public import tfxio

    options = tfxio.RecordBatchesOptions(batch_size=8192, num_epochs=1, shuffle=False)
    batches = list(fn_args.data_accessor.record_batch_factory(files, options, schema))
    return pa.Table.from_batches(batches)


def _features(schema: Any, label_key: str, train: dict[str, list]) -> tuple[list[dict], list[str]]:
    """The Trainer's FeatureSpec as dicts of the same fields, and the class names."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    domains = {d.name: list(d.value) for d in schema.string_domain}
    features = []
    for feature in schema.feature:
        if feature.name == label_key or "TRAINING" in feature.not_in_environment:
            continue
        if feature.type == schema_pb2.BYTES:
            vocabulary = domains.get(feature.domain) or list(feature.string_domain.value)
            features.append(
                {
                    "name": feature.name,
                    "kind": "categorical",
                    "dtype": "bytes",
                    "mean": 0.0,
                    "std": 1.0,
                    "vocabulary": vocabulary,
                    "input_name": "",
                }
            )
        else:
            values = np.array([_first(v, np.nan) for v in train[feature.name]], dtype=np.float64)
            std = float(np.nanstd(values))  # TFDV's std_dev: the population's
            features.append(
                {
                    "name": feature.name,
                    "kind": "numeric",
                    "dtype": "int" if feature.type == schema_pb2.INT else "float",
                    "mean": float(np.nanmean(values)),
                    "std": std or 1.0,
                    "vocabulary": [],
                    "input_name": "",
                }
            )
    for feature, safe in zip(features, _safe_names([f["name"] for f in features]).values(), strict=True):
        feature["input_name"] = safe
    label = next(f for f in schema.feature if f.name == label_key)
    classes = domains.get(label.domain) or list(label.string_domain.value)
    if not classes:
        classes = sorted(c for c in {_label_text(v) for v in train[label_key]} if c)
    return features, [str(c) for c in classes]


def _encode(features: list[dict], columns: dict[str, list]) -> dict[str, Any]:
    inputs = {}
    for feature in features:
        raw = columns[feature["name"]]
        if feature["kind"] == "numeric":
            values = np.array([_first(v, np.nan) for v in raw], dtype=np.float64)
            scaled = (values - feature["mean"]) / (feature["std"] or 1.0)
            inputs[_key(feature)] = np.nan_to_num(scaled, nan=0.0).astype(np.float32).reshape(-1, 1)
        else:
            index = {value: i + 1 for i, value in enumerate(feature["vocabulary"])}
            ids = [index.get(_text(_first(v, None)), 0) for v in raw]
            inputs[_key(feature)] = np.array(ids, dtype=np.int32).reshape(-1, 1)
    return inputs


def _labels(classes: list[str], raw: list) -> Any:
    index = {value: i for i, value in enumerate(classes)}
    return np.array([index[_label_text(v)] for v in raw], dtype=np.int32)


def _build(features: list[dict], classes: list[str], hp: dict[str, Any]) -> Any:
    import keras

    inputs, parts = {}, []
    for feature in features:
        key = _key(feature)
        if feature["kind"] == "numeric":
            tensor = keras.Input(shape=(1,), name=key, dtype="float32")
            parts.append(tensor)
        else:
            tensor = keras.Input(shape=(1,), name=key, dtype="int32")
            size = len(feature["vocabulary"]) + 1
            if size <= ONE_HOT_MAX:
                one_hot = keras.layers.CategoryEncoding(
                    num_tokens=size, output_mode="one_hot", name=f"{key}__one_hot"
                )
                parts.append(one_hot(tensor))
            else:
                width = min(16, int(math.ceil(size**0.5)) + 1)
                embedded = keras.layers.Embedding(size, width, name=f"{key}__embedding")(tensor)
                parts.append(keras.layers.Flatten(name=f"{key}__flatten")(embedded))
        inputs[key] = tensor
    x = keras.layers.Concatenate(name="features__concat")(parts) if len(parts) > 1 else parts[0]
    for layer, units in enumerate(hp["hidden_units"], 1):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden__{layer}")(x)
        if hp["dropout"]:
            x = keras.layers.Dropout(hp["dropout"], seed=hp["seed"], name=f"dropout__{layer}")(x)
    if len(classes) == 2:
        output = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
        loss = "binary_crossentropy"
    else:
        output = keras.layers.Dense(
            len(classes), activation="softmax", dtype="float32", name="probabilities"
        )(x)
        loss = "sparse_categorical_crossentropy"
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp["learning_rate"]),
        loss=loss,
        metrics=["accuracy"],
    )
    return model


def _fit(model: Any, x_train: Any, y_train: Any, x_eval: Any, y_eval: Any, hp: dict[str, Any]) -> Any:
    import keras

    keras.utils.set_random_seed(hp["seed"])
    return model.fit(
        x_train,
        y_train,
        validation_data=(x_eval, y_eval),
        epochs=hp["epochs"],
        batch_size=hp["batch_size"],
        shuffle=True,
        verbose=0,
    )


def _export(model: Any, features: list[dict], classes: list[str], path: str) -> None:
    import tensorflow as tf

    binary = len(classes) == 2

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.tables = {}
            for feature in features:
                if feature["kind"] == "categorical":
                    vocabulary = feature["vocabulary"] or [""]
                    keys = tf.constant(vocabulary, dtype=tf.string)
                    ids = tf.range(1, len(vocabulary) + 1, dtype=tf.int64)
                    self.tables[_key(feature)] = tf.lookup.StaticHashTable(
                        tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=0
                    )
            self.classes = tf.constant(classes)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples: Any) -> dict[str, Any]:
            dtypes = {"int": tf.int64, "float": tf.float32, "bytes": tf.string}
            wanted = {f["name"]: tf.io.VarLenFeature(dtypes[f["dtype"]]) for f in features}
            parsed = tf.io.parse_example(examples, wanted)
            batch = tf.shape(examples)[0]
            inputs = {}
            for feature in features:
                sparse = parsed[feature["name"]]
                if feature["dtype"] == "int":
                    sparse = tf.sparse.map_values(tf.cast, sparse, tf.float32)
                default = float("nan") if feature["kind"] == "numeric" else ""
                dense = tf.sparse.to_dense(sparse, default_value=default)
                dense = tf.concat([dense, tf.fill([batch, 1], tf.constant(default, dense.dtype))], axis=1)
                dense = tf.reshape(dense[:, :1], [-1, 1])
                if feature["kind"] == "numeric":
                    scaled = (dense - feature["mean"]) / (feature["std"] or 1.0)
                    inputs[_key(feature)] = tf.where(tf.math.is_nan(scaled), tf.zeros_like(scaled), scaled)
                else:
                    inputs[_key(feature)] = tf.cast(self.tables[_key(feature)].lookup(dense), tf.int32)
            scores = self.model(inputs, training=False)
            if binary:
                positive = tf.reshape(scores, [-1])
                probabilities = tf.stack([1.0 - positive, positive], axis=1)
            else:
                probabilities = scores
            class_ids = tf.argmax(probabilities, axis=1)
            return {
                "probabilities": probabilities,
                "class_ids": class_ids,
                "classes": tf.gather(self.classes, class_ids),
                "all_classes": tf.tile(tf.expand_dims(self.classes, 0), [batch, 1]),
            }

    module = Serving()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


def run_fn(fn_args: Any) -> None:
    """TFX's Trainer entry point."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx import v1 as tfx

    hp = {**DEFAULT_HYPERPARAMETERS, **(fn_args.custom_config or {})}
    label_key = hp.pop("label_key", "species")
    tf.config.experimental.enable_op_determinism()
    schema = tfx.utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
    train_table = _read(fn_args, fn_args.train_files, schema)
    eval_table = _read(fn_args, fn_args.eval_files, schema)
    train = {name: train_table.column(name).to_pylist() for name in train_table.column_names}
    evaluation = {name: eval_table.column(name).to_pylist() for name in eval_table.column_names}
    features, classes = _features(schema, label_key, train)
    x_train, x_eval = _encode(features, train), _encode(features, evaluation)
    y_train, y_eval = _labels(classes, train[label_key]), _labels(classes, evaluation[label_key])
    import keras

    keras.utils.set_random_seed(hp["seed"])  # before the weights are created
    model = _build(features, classes, hp)
    _fit(model, x_train, y_train, x_eval, y_eval, hp)
    _export(model, features, classes, fn_args.serving_model_dir)
    os.makedirs(os.path.join(fn_args.model_run_dir, "keras"), exist_ok=True)
    model.save(os.path.join(fn_args.model_run_dir, "keras", "model.keras"))
    with open(os.path.join(fn_args.model_run_dir, "feature_spec.json"), "w") as f:
        json.dump({"features": features, "label": label_key, "classes": classes}, f, indent=2)
