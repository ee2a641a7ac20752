"""The built-in tabular model: plain Keras 3 and numpy, no TensorFlow.

Everything here runs on any Keras 3 backend (TensorFlow here; JAX or PyTorch on a GPU
machine without TensorFlow), so the same training loop is what runs on a GPU. The
preprocessing constants (vocabularies, means, standard deviations) come from the schema
and the train split's statistics and are kept in a :class:`FeatureSpec`, which the
TensorFlow export replays inside the serving signature, so serving applies exactly
the preprocessing training saw.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kubetfx.faults import failpoint

ONE_HOT_MAX = 16  # vocabularies up to this size are one-hot encoded, larger ones embedded


@dataclass
class Feature:
    """One input feature and how it is prepared."""

    name: str
    kind: str  # "numeric" | "categorical"
    dtype: str = "float"  # how tf.Example stores it: "int", "float" or "bytes"
    mean: float = 0.0
    std: float = 1.0
    vocabulary: list[str] = field(default_factory=list)  # index 0 is missing / out of vocabulary
    # The model's name for it (Keras input and layer names allow [A-Za-z0-9_] only); the
    # serving signature and reports use ``name``, the column's name as written in the data.
    input_name: str = ""

    @property
    def key(self) -> str:
        """The Keras input name (the column's name when no safe name was set)."""
        return self.input_name or self.name


OUTPUT_LAYERS = ("probability", "probabilities")  # the built-in model's output layer names


def safe_names(names: list[str]) -> dict[str, str]:
    """Column names -> distinct names Keras and TensorFlow accept as input and layer names.

    ``Delta 15 N (o/oo)`` -> ``Delta_15_N_o_oo``; a name that does not start with a letter
    gets an ``f_`` prefix; names that collide once made safe (or with an output layer's
    name) get ``_2``, ``_3``... A safe name never holds ``__`` (the model's other layers do).
    """
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


@dataclass
class FeatureSpec:
    """Inputs, label and classes of the built-in model."""

    features: list[Feature]
    label: str
    classes: list[str]

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        data = json.loads(text)
        return cls(
            features=[Feature(**f) for f in data["features"]], label=data["label"], classes=data["classes"]
        )


@dataclass
class HyperParameters:
    """The built-in model's knobs (component parameters)."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.01
    hidden_units: list[int] = field(default_factory=lambda: [32, 16])
    dropout: float = 0.0
    seed: int = 42

    @classmethod
    def parse(cls, values: dict[str, Any]) -> HyperParameters:
        """From a dict, refusing unknown names and bad values with the name in the message."""
        from kubetfx.errors import ParameterError

        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown hyper-parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
        params = cls(**values)
        if params.epochs < 1 or params.batch_size < 1 or params.learning_rate <= 0:
            raise ParameterError(f"hyper-parameters out of range: {values}")
        if not 0 <= params.dropout < 1:
            raise ParameterError(f"dropout {params.dropout} must be in [0, 1)")
        return params


def encode_features(spec: FeatureSpec, columns: dict[str, Any]) -> dict[str, np.ndarray]:
    """Raw columns (lists or arrays, None/NaN/empty for missing) -> model inputs."""
    inputs = {}
    for feature in spec.features:
        raw = columns[feature.name]
        if feature.kind == "numeric":
            values = np.array([_first(v, np.nan) for v in raw], dtype=np.float64)
            scaled = (values - feature.mean) / (feature.std or 1.0)
            inputs[feature.key] = np.nan_to_num(scaled, nan=0.0).astype(np.float32).reshape(-1, 1)
        else:
            index = {value: i + 1 for i, value in enumerate(feature.vocabulary)}
            ids = [index.get(_text(_first(v, None)), 0) for v in raw]
            inputs[feature.key] = np.array(ids, dtype=np.int32).reshape(-1, 1)
    return inputs


def label_text(value: Any) -> str | None:
    """A label value as a class name (None when missing or infinite); ``encode_labels`` agrees."""
    first = _first(value, None)
    if isinstance(first, float) and math.isinf(first):
        return None
    return _text(first)


def encode_labels(spec: FeatureSpec, raw: Any, source: str = "data") -> np.ndarray:
    """Label column -> class ids; a missing or unknown label is an error naming it."""
    from kubetfx.errors import InputDataError

    index = {value: i for i, value in enumerate(spec.classes)}
    values = list(raw)
    texts = [label_text(value) for value in values]
    bad = [row for row, text in enumerate(texts) if text not in index]
    if bad:
        text, first = texts[bad[0]], _first(values[bad[0]], None)
        if isinstance(first, float) and math.isinf(first):
            what, fix = f"{first} (not a class)", "fix those values in the input data: a label names a class"
        elif text is None:
            what, fix = "missing (empty or NaN)", "drop those rows or fill in their label in the input data"
        else:
            what, fix = f"{text!r}, not one of {spec.classes},", "fix those values or the label's domain"
        raise InputDataError(
            f"label {spec.label!r} is {what} in {len(bad)} row(s) of the {source} "
            f"(first: row {bad[0]}); {fix}"
        )
    return np.array([index[text] for text in texts], dtype=np.int32)


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


def build_model(spec: FeatureSpec, params: HyperParameters, mixed_precision: bool = False) -> Any:
    """A small MLP over normalized numeric and one-hot/embedded categorical features."""
    import keras

    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    inputs, parts = {}, []
    # Every layer but the inputs and the output has "__" in its name, which safe_names never
    # gives, so no feature's name (say "dense") can collide with a layer's.
    for feature in spec.features:
        key = feature.key
        if feature.kind == "numeric":
            tensor = keras.Input(shape=(1,), name=feature.key, dtype="float32")
            parts.append(tensor)
        else:
            tensor = keras.Input(shape=(1,), name=feature.key, dtype="int32")
            size = len(feature.vocabulary) + 1
            if size <= ONE_HOT_MAX:
                one_hot = keras.layers.CategoryEncoding(
                    num_tokens=size, output_mode="one_hot", name=f"{key}__one_hot"
                )
                parts.append(one_hot(tensor))
            else:
                width = min(16, int(math.ceil(size**0.5)) + 1)
                embedded = keras.layers.Embedding(size, width, name=f"{key}__embedding")(tensor)
                parts.append(keras.layers.Flatten(name=f"{key}__flatten")(embedded))
        inputs[feature.key] = tensor
    x = keras.layers.Concatenate(name="features__concat")(parts) if len(parts) > 1 else parts[0]
    for layer, units in enumerate(params.hidden_units, 1):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden__{layer}")(x)
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, seed=params.seed, name=f"dropout__{layer}")(x)
    if spec.binary:
        output = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
        loss = "binary_crossentropy"
    else:
        output = keras.layers.Dense(
            len(spec.classes), activation="softmax", dtype="float32", name="probabilities"
        )(x)
        loss = "sparse_categorical_crossentropy"
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss=loss,
        metrics=["accuracy"],
        # 32 batches per tf.function call instead of one: the same steps and the same
        # weights, a third of the time on small models, where the per-call cost dominates
        # (docs/profile.md).
        steps_per_execution=32,
    )
    return model


def train(
    model: Any,
    train_inputs: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval_inputs: dict[str, np.ndarray],
    eval_labels: np.ndarray,
    params: HyperParameters,
) -> dict[str, float]:
    """Fit with a fixed seed; returns the last epoch's training and validation metrics."""
    import keras

    keras.utils.set_random_seed(params.seed)
    history = model.fit(
        train_inputs,
        train_labels,
        validation_data=(eval_inputs, eval_labels),
        epochs=params.epochs,
        batch_size=params.batch_size,
        # Validation computes the same metrics over the same rows in any batch size.
        validation_batch_size=max(params.batch_size, 1024),
        shuffle=True,
        verbose=0,
        # A test hook (kubetfx.faults), a no-op unless a fault test arms it: stop mid-training.
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: failpoint("trainer.fit"))],
    )
    return {name: round(float(values[-1]), 6) for name, values in history.history.items()}
