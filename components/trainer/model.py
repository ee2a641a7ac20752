"""The built-in tabular model: plain Keras 3 and numpy.

Everything here runs on any Keras 3 backend (TensorFlow here; JAX or PyTorch on a GPU
machine without TensorFlow), so the same training loop is what runs on a GPU; only on
the TensorFlow backend is the training input a ``tf.data`` one (``_fit_input``). The
preprocessing constants (vocabularies, means, standard deviations) come from the schema
and the train split's statistics and are kept in a :class:`FeatureSpec`, which the
TensorFlow export replays inside the serving signature, so serving applies exactly
the preprocessing training saw.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
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
    """The built-in model's knobs (component parameters).

    ``epochs`` is a ceiling: with ``patience`` > 0 training stops once the loss on a
    held-out part of the train split (``validation_fraction``, drawn with ``seed``) has not
    improved by more than ``min_delta`` for ``patience`` epochs, and the best epoch's
    weights are restored. ``batch_size`` and ``steps_per_execution`` of 0 are chosen for the
    data's size (:func:`choose_batch_size`, :func:`choose_steps_per_execution`).
    """

    epochs: int = 30
    batch_size: int = 0
    learning_rate: float = 0.01
    hidden_units: list[int] = field(default_factory=lambda: [32, 16])
    dropout: float = 0.0
    seed: int = 42
    patience: int = 5
    min_delta: float = 0.0
    validation_fraction: float = 0.1
    steps_per_execution: int = 0
    stream_rows: int = 500_000  # above this many training rows the input is streamed (.stream)

    @classmethod
    def parse(cls, values: dict[str, Any]) -> HyperParameters:
        """From a dict, refusing unknown names and bad values with the name in the message."""
        from kubetfx.errors import ParameterError

        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown hyper-parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
        params = cls(**values)
        if params.epochs < 1 or params.batch_size < 0 or params.learning_rate <= 0:
            raise ParameterError(f"hyper-parameters out of range: {values}")
        if not 0 <= params.dropout < 1:
            raise ParameterError(f"dropout {params.dropout} must be in [0, 1)")
        if (
            params.patience < 0
            or params.min_delta < 0
            or params.steps_per_execution < 0
            or params.stream_rows < 0
        ):
            raise ParameterError(
                f"patience {params.patience}, min_delta {params.min_delta} and steps_per_execution "
                f"{params.steps_per_execution} (and stream_rows) must be >= 0 (patience 0: no early "
                "stopping; "
                "steps_per_execution 0: chosen for the data's size)"
            )
        if params.patience and not 0 < params.validation_fraction < 0.5:
            raise ParameterError(
                f"validation_fraction {params.validation_fraction} must be in (0, 0.5): the share of "
                "the train split held out to decide when to stop"
            )
        return params

    def sized(self, rows: int) -> HyperParameters:
        """A copy whose ``batch_size`` and ``steps_per_execution`` are set: the given values,
        else chosen for the rows an epoch fits on: ``rows`` training rows, less those held
        out to decide when to stop (:func:`holdout_size`)."""
        if self.patience:
            rows -= holdout_size(rows, self.validation_fraction)
        batch = self.batch_size or choose_batch_size(rows)
        steps = self.steps_per_execution or choose_steps_per_execution(rows, batch)
        return replace(self, batch_size=batch, steps_per_execution=steps)


# The sizing rule: the smallest power-of-two batch from 32 up to 1024 that keeps an epoch
# to at most 256 steps; and as many steps per tf.function call as an epoch has, up to 64
# (an epoch of more is split into equal calls where its steps allow).
MIN_BATCH, MAX_BATCH, STEPS_PER_EPOCH, MAX_STEPS_PER_EXECUTION = 32, 1024, 256, 64


def choose_batch_size(rows: int) -> int:
    """32 up to 1k-batch epochs of <= 256 steps: 8k rows -> 32, 15k -> 64, 100k -> 512,
    above 262k -> 1024. Small data keeps small batches (many updates per epoch, what
    converges on a few hundred rows); large data gets larger ones, which cost less per row
    on CPUs and GPUs alike."""
    batch = MIN_BATCH
    while batch < MAX_BATCH and -(-rows // batch) > STEPS_PER_EPOCH:
        batch *= 2
    return batch


def choose_steps_per_execution(rows: int, batch_size: int) -> int:
    """Steps per tf.function call: an epoch's steps, at most 64 (the per-call overhead
    dominates small models). An epoch of more than 64 steps is split into the fewest
    equal calls where its steps divide evenly (141 steps: 3 calls of 47), so that the
    epoch is a whole number of calls and training keeps one input iterator (see
    ``_fit_input``); else 64."""
    steps = max(1, -(-rows // max(batch_size, 1)))
    calls = -(-steps // MAX_STEPS_PER_EXECUTION)
    return steps // calls if steps % calls == 0 else MAX_STEPS_PER_EXECUTION


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
        # Several batches per tf.function call instead of one: the same steps and the same
        # weights, a third of the time on small models, where the per-call cost dominates
        # (docs/profile.md). 0 (not sized yet): 32.
        steps_per_execution=params.steps_per_execution or 32,
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
    """Fit a fixed ``params.epochs`` with a fixed seed (no early stopping); returns the last
    epoch's training and validation metrics."""
    import keras

    keras.utils.set_random_seed(params.seed)
    history = model.fit(
        train_inputs,
        train_labels,
        validation_data=(eval_inputs, eval_labels),
        epochs=params.epochs,
        batch_size=params.batch_size or MIN_BATCH,
        # Validation computes the same metrics over the same rows in any batch size.
        validation_batch_size=max(params.batch_size, 1024),
        shuffle=True,
        verbose=0,
        # A test hook (kubetfx.faults), a no-op unless a fault test arms it: stop mid-training.
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: failpoint("trainer.fit"))],
    )
    return {name: round(float(values[-1]), 6) for name, values in history.history.items()}


@dataclass
class Fitted:
    """What :func:`fit` did: the metrics, and how many epochs ran and why it stopped."""

    metrics: dict[str, float]
    epochs_run: int
    best_epoch: int  # 1-based: the epoch whose weights the model has
    ceiling: int  # the epochs parameter
    stopped: str  # "early" (validation stopped improving), "ceiling" (ran all epochs), "fixed"
    reason: str  # in words, for the metadata and the report
    validation_rows: int  # held out of the train split to decide when to stop (0: none)
    batch_size: int
    steps_per_execution: int
    steps: int  # optimizer steps taken

    def summary(self) -> str:
        """A few words for the run summary: ``early 14/30, best 9``."""
        return {
            "early": f"early {self.epochs_run}/{self.ceiling}, best {self.best_epoch}",
            "ceiling": f"all {self.epochs_run}, best {self.best_epoch}",
            "fixed": f"fixed {self.epochs_run}",
        }[self.stopped]


MAX_HOLDOUT_ROWS = 50_000  # plenty to tell whether the loss still improves


def holdout_size(rows: int, fraction: float) -> int:
    """How many of ``rows`` training rows :func:`holdout` holds out."""
    return min(max(round(rows * fraction), min(20, rows // 5)), MAX_HOLDOUT_ROWS)


def holdout(rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) of a split of ``rows`` rows, drawn with ``seed``: a
    ``fraction`` of them, at least 20 (or a fifth of small data), at most 50,000; sorted."""
    held = holdout_size(rows, fraction)
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[held:]), np.sort(order[:held])


def _take(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in inputs.items()}


@dataclass
class Stopper:
    """Early stopping's bookkeeping, apart from any training loop (``fit`` and the
    multi-worker loop share it): an epoch improves when its held-out loss is below the
    best so far by more than ``min_delta``; ``patience`` epochs without one stop training."""

    patience: int
    min_delta: float = 0.0
    best_loss: float = math.inf
    best_accuracy: float = 0.0
    best_epoch: int = 0  # 1-based; 0 before the first epoch
    wait: int = 0

    def update(self, epoch: int, loss: float, accuracy: float) -> tuple[bool, bool]:
        """Record epoch ``epoch`` (1-based): (improved, stop now)."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_accuracy, self.best_epoch, self.wait = loss, accuracy, epoch, 0
            return True, False
        self.wait += 1
        return False, self.wait >= self.patience

    def outcome(self, epochs_run: int, ceiling: int, held_rows: int) -> tuple[str, str]:
        """("early" or "ceiling", the reason in words)."""
        if epochs_run < ceiling:
            return "early", (
                f"stopped at epoch {epochs_run} of {ceiling}: the loss on {held_rows} held-out train rows "
                f"did not improve by more than {self.min_delta:g} for {self.patience} epochs; "
                f"epoch {self.best_epoch}'s weights restored"
            )
        return "ceiling", (
            f"ran all {ceiling} epochs (the ceiling), the loss on {held_rows} held-out train rows still "
            f"improving within {self.patience} epochs; epoch {self.best_epoch}'s weights kept"
        )


def holdout_metrics(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(cross-entropy, accuracy) of predicted ``scores`` (a sigmoid column or softmax rows),
    as Keras computes them (probabilities clipped to [1e-7, 1 - 1e-7])."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if scores.ndim == 1 or scores.shape[1] == 1:
        p = np.clip(scores.reshape(-1), 1e-7, 1 - 1e-7)
        loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        return float(loss), float(np.mean((p > 0.5) == (labels == 1)))
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    p = p / p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(labels)), labels]))
    return float(loss), float(np.mean(scores.argmax(axis=1) == labels))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from ranks (ties share their mean rank); several classes: the mean of the
    one-vs-rest AUCs of the classes present (NaN when no class has both outcomes)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] > 1:
        present = [c for c in range(scores.shape[1]) if 0 < int((labels == c).sum()) < len(labels)]
        if not present:
            return math.nan
        return float(np.mean([roc_auc((labels == c).astype(int), scores[:, c]) for c in present]))
    scores = scores.reshape(-1)
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if not n_pos or not n_neg:
        return math.nan
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    for start, count in zip(first[counts > 1], counts[counts > 1], strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def predict_scores(model: Any, inputs: dict[str, np.ndarray], chunk: int = 8192) -> np.ndarray:
    """The model's outputs on ``inputs``, a compiled call per ``chunk`` rows (no per-call
    dataset and iterator set-up, which costs more than a small holdout's forward pass).

    A model made under a strategy of several replicas (MirroredStrategy) is called
    directly: its ``predict_on_batch`` hands the whole batch to every replica and returns
    their outputs end to end, as many rows as replicas times the batch."""
    rows = len(next(iter(inputs.values())))
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None and strategy.num_replicas_in_sync > 1:

        def predict(batch: dict[str, np.ndarray]) -> Any:
            return model(batch, training=False)

    else:
        predict = model.predict_on_batch
    parts = [
        np.asarray(predict({k: v[i : i + chunk] for k, v in inputs.items()})) for i in range(0, rows, chunk)
    ]
    return np.concatenate(parts)


def _stopping_callback(stopper: Stopper, inputs: dict[str, np.ndarray], labels: np.ndarray) -> Any:
    """A Keras callback: after each epoch, the held-out loss into ``stopper``; keeps the
    best epoch's weights and puts them back when training ends."""
    import keras

    class HoldoutStopping(keras.callbacks.Callback):
        best_weights: list[Any] | None = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss, accuracy = holdout_metrics(predict_scores(self.model, inputs), labels)
            improved, stop = stopper.update(epoch + 1, loss, accuracy)
            if improved:
                self.best_weights = self.model.get_weights()
            if stop:
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return HoldoutStopping()


def _fit_input(inputs: dict[str, np.ndarray], labels: np.ndarray, params: HyperParameters) -> dict[str, Any]:
    """``model.fit``'s data arguments. On the TensorFlow backend: the rows as a ``tf.data``
    input, reshuffled every pass (seeded), in batches of ``batch_size`` with the remainder
    last; when an epoch is a whole number of ``steps_per_execution`` calls (the sizing
    rule's choice where the steps allow), the same input repeated without end, with
    ``steps_per_epoch``. On other backends: the arrays, shuffled by Keras every epoch.

    Why: Keras makes a new input iterator every epoch (about 40 ms, more than a whole
    epoch of a few hundred rows takes) unless it is given an endless input and
    ``steps_per_epoch``; then it keeps one for the whole fit. An epoch that is not a whole
    number of calls would run into the next, so it gets the finite input (Keras then
    makes an iterator, so a new shuffled order, at the start and at the end of each
    epoch). Within one form ``steps_per_execution`` changes the speed, not the weights;
    a value that moves an epoch from one form to the other changes the shuffled order."""
    import keras

    rows, batch = len(labels), params.batch_size
    if keras.backend.backend() != "tensorflow":
        return {"x": inputs, "y": labels, "batch_size": batch, "shuffle": True}
    import tensorflow as tf

    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, labels))
        .shuffle(rows, seed=params.seed, reshuffle_each_iteration=True)
        .batch(batch)
    )
    steps = -(-rows // batch)
    if steps % params.steps_per_execution:
        return {"x": dataset, "shuffle": False}  # a new iterator, and order, every epoch
    return {"x": dataset.repeat(), "steps_per_epoch": steps, "shuffle": False}


def build_training_state(model: Any, data: Any) -> None:
    """Create the optimizer's, the metrics' and the loss's variables before ``model.fit``
    (``data``: the ``tf.data`` input ``fit`` gets; anything else: nothing is done).

    Why: without a distribution strategy, Keras 3 on TensorFlow creates them while it traces
    its training function, and TensorFlow traces a ``tf.function`` whose first trace creates
    variables a second time, without creating them. Built first (symbolically, from the
    input's shapes and types: no data is read, no random number drawn), the function is
    traced once: about 0.8 s less of a small model's first epoch on a 2-core machine, the
    same weights. Keras does the same build itself under a distribution strategy; this
    calls the method it uses there, in the model's strategy's scope as Keras does (so the
    variables of a model made under ``MirroredStrategy`` are mirrored), and leaves Keras to
    build as before where a version lacks it."""
    spec = getattr(data, "element_spec", None)
    symbolic_build = getattr(model, "_symbolic_build", None)
    if spec is None or symbolic_build is None:
        return
    with model.distribute_strategy.scope():
        symbolic_build(data_batch=spec)  # the optimizer too, when it is not built yet


def fit(
    model: Any,
    train_inputs: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval_inputs: dict[str, np.ndarray],
    eval_labels: np.ndarray,
    params: HyperParameters,
) -> Fitted:
    """Train with early stopping on a held-out part of the train split (``params.patience``
    > 0) or a fixed number of epochs; then measure the eval split once.

    The eval split never steers training: it is what the Evaluator judges the model on, so
    choosing the epoch by it would make that judgement optimistic. Metrics: ``loss``,
    ``accuracy`` (training, at the best epoch), ``holdout_loss``, ``holdout_accuracy`` (the
    held-out rows that decided when to stop), ``val_loss``, ``val_accuracy``, ``val_auc``
    (the eval split, with the weights kept; AUC as :func:`roc_auc`).
    """
    import keras

    params = (
        params.sized(len(train_labels)) if not (params.batch_size and params.steps_per_execution) else params
    )
    batch = params.batch_size
    hook = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: failpoint("trainer.fit"))
    keras.utils.set_random_seed(params.seed)
    if not params.patience:
        data = _fit_input(train_inputs, train_labels, params)
        build_training_state(model, data["x"])
        history = model.fit(epochs=params.epochs, verbose=0, callbacks=[hook], **data)
        epochs_run = best = len(history.history["loss"])
        stopped, reason, held_rows = (
            "fixed",
            f"patience 0: ran all {params.epochs} epochs (no early stopping)",
            0,
        )
        fit_rows = len(train_labels)
        train_metrics = {name: values[-1] for name, values in history.history.items()}
    else:
        kept, held = holdout(len(train_labels), params.validation_fraction, params.seed)
        held_rows, fit_rows = len(held), len(kept)
        stopper = Stopper(params.patience, params.min_delta)
        data = _fit_input(_take(train_inputs, kept), train_labels[kept], params)
        build_training_state(model, data["x"])
        history = model.fit(
            epochs=params.epochs,
            verbose=0,
            callbacks=[_stopping_callback(stopper, _take(train_inputs, held), train_labels[held]), hook],
            **data,
        )
        epochs_run, best = len(history.history["loss"]), stopper.best_epoch
        train_metrics = {name: values[best - 1] for name, values in history.history.items()}
        train_metrics.update(holdout_loss=stopper.best_loss, holdout_accuracy=stopper.best_accuracy)
        stopped, reason = stopper.outcome(epochs_run, params.epochs, held_rows)
    # The eval split, once, with the weights kept: loss, accuracy and ROC AUC (measured,
    # never used to choose anything).
    scores = predict_scores(model, eval_inputs)
    val_loss, val_accuracy = holdout_metrics(scores, eval_labels)
    metrics = {name: round(float(value), 6) for name, value in train_metrics.items()}
    metrics.update(val_loss=round(val_loss, 6), val_accuracy=round(val_accuracy, 6))
    metrics["val_auc"] = round(roc_auc(eval_labels, scores), 6)
    return Fitted(
        metrics=metrics,
        epochs_run=epochs_run,
        best_epoch=best,
        ceiling=params.epochs,
        stopped=stopped,
        reason=reason,
        validation_rows=held_rows,
        batch_size=batch,
        steps_per_execution=params.steps_per_execution,
        steps=epochs_run * -(-fit_rows // batch),
    )
