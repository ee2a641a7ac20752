"""Early stopping and sizing of the built-in model: the rule's arithmetic, what is recorded,
the best weights restored, and quality kept against a fixed number of epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.trainer import executor as trainer
from kubetfx.components.trainer.model import (
    HyperParameters,
    Stopper,
    _fit_input,
    choose_batch_size,
    choose_steps_per_execution,
    holdout,
    holdout_metrics,
    roc_auc,
)

from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics as statistics_artifact
from kubetfx.artifacts.examples import read_split

# Early stopping may cost at most this much quality against a fixed 30 epochs, on the
# same eval split (the benchmark, benchmarks/early_stopping.py, reports the same).
AUC_TOLERANCE, ACCURACY_TOLERANCE = 0.01, 0.02


def test_the_sizing_rule() -> None:
    assert [choose_batch_size(n) for n in (0, 230, 8192, 8193, 15_000, 100_000, 10**7)] == [
        32,
        32,
        32,
        64,
        64,
        512,
        1024,
    ]
    assert choose_steps_per_execution(230, 32) == 8
    assert choose_steps_per_execution(100_000, 512) == 49  # 196 steps: 4 equal calls
    assert choose_steps_per_execution(9_014, 64) == 47  # 141 steps: 3 equal calls
    assert choose_steps_per_execution(9_500, 64) == 64  # 149 steps do not split evenly
    sized = HyperParameters().sized(15_000)  # 13,500 rows fit, 1,500 held out: 211 steps
    assert (sized.batch_size, sized.steps_per_execution) == (64, 64)
    small = HyperParameters().sized(233)  # 210 fit, 23 held out: one call of 7 steps an epoch
    assert (small.batch_size, small.steps_per_execution) == (32, 7)
    assert HyperParameters(patience=0).sized(233).steps_per_execution == 8  # no holdout
    given = HyperParameters(batch_size=16, steps_per_execution=3).sized(15_000)
    assert (given.batch_size, given.steps_per_execution) == (16, 3)  # explicit values honoured


def test_an_epoch_of_the_endless_input_is_every_row_once_in_a_new_order() -> None:
    """When an epoch is one call (the sizing rule on small data), fit is given one endless,
    reshuffled input instead of arrays (no new iterator every epoch); each epoch of it
    still holds every row once, with its own label, in batches with the remainder last."""
    rows = 210
    inputs = {"x": np.arange(rows, dtype=np.float32).reshape(-1, 1)}
    labels = np.arange(rows, dtype=np.int32)
    given = _fit_input(inputs, labels, HyperParameters(batch_size=32, steps_per_execution=7))
    assert given["steps_per_epoch"] == 7 and given["shuffle"] is False
    batches = iter(given["x"])
    epochs = []
    for _ in range(3):
        seen = [next(batches) for _ in range(7)]
        assert [len(y) for _, y in seen] == [32] * 6 + [18]
        for x, y in seen:
            assert x["x"].numpy().reshape(-1).astype(int).tolist() == y.numpy().tolist()
        epochs.append(np.concatenate([y.numpy() for _, y in seen]).tolist())
    assert all(sorted(epoch) == list(range(rows)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3  # a new order every epoch
    # An epoch that is not a whole number of calls would run into the next: a finite
    # input, iterated anew each epoch, in the same orders (steps per call: speed only).
    finite = _fit_input(inputs, labels, HyperParameters(batch_size=32, steps_per_execution=4))
    assert "steps_per_epoch" not in finite and finite["shuffle"] is False
    again = [np.concatenate([y.numpy() for _, y in finite["x"]]).tolist() for _ in range(3)]
    assert again == epochs


def _penguins_arrays(penguins: dict[str, str]) -> tuple[Any, dict[str, np.ndarray], np.ndarray]:
    """The train split's feature spec, encoded features and labels, as the Trainer makes them."""
    from kubetfx.components.trainer.model import encode_features, encode_labels

    train = read_split(penguins["examples"], "train")
    spec = trainer.feature_spec(
        schema_artifact.load(penguins["schema"]),
        statistics_artifact.load(penguins["statistics"], "train"),
        "species",
        train,
        [],
    )
    columns = trainer._columns(train)
    return spec, encode_features(spec, columns), encode_labels(spec, columns["species"])


def test_steps_per_execution_changes_the_speed_not_the_weights(penguins) -> None:
    """Within one input form the number of steps per call changes nothing but speed:
    8, 4 and 2 calls an epoch of 8 steps (the endless input) train the same weights, and so
    do 3 and 5 (the finite input: an epoch is not a whole number of calls)."""
    import keras
    from kubetfx.components.trainer.model import build_model, fit

    spec, x, y = _penguins_arrays(penguins)
    assert -(-len(y) // 32) == 8  # steps an epoch, with no holdout (patience 0)

    def weights(steps: int) -> list[bytes]:
        params = HyperParameters(epochs=3, patience=0, steps_per_execution=steps).sized(len(y))
        keras.utils.set_random_seed(params.seed)
        model = build_model(spec, params)
        fit(model, x, y, x, y, params)
        return [w.tobytes() for w in model.get_weights()]

    assert weights(8) == weights(4) == weights(2)
    assert weights(3) == weights(5)


def test_the_training_step_is_traced_once_and_trains_the_same_weights(penguins, monkeypatch) -> None:
    """Keras builds the optimizer's and the metrics' variables in the training function's
    first trace unless they exist; TensorFlow then traces the function again. The Trainer
    builds them first: one trace of the step, and the weights of Keras' own way."""
    import keras
    from kubetfx.components.trainer import model as model_module
    from kubetfx.components.trainer.model import build_model, fit

    spec, x, y = _penguins_arrays(penguins)

    def train_counting(patience: int) -> tuple[int, list[bytes]]:
        params = HyperParameters(epochs=4, patience=patience).sized(len(y))
        keras.utils.set_random_seed(params.seed)
        model = build_model(spec, params)
        traced = []
        step = model.train_step

        def counted(data):  # runs once per trace of the step, not per step
            traced.append(1)
            return step(data)

        model.train_step = counted
        fit(model, x, y, x, y, params)
        return len(traced), [w.tobytes() for w in model.get_weights()]

    for patience in (0, 3):  # both of fit's paths
        traces, built_first = train_counting(patience)
        assert traces == 1, f"patience {patience}: the training step was traced {traces} times"
        with monkeypatch.context() as patch:
            patch.setattr(model_module, "build_training_state", lambda *_: None)
            traces, keras_way = train_counting(patience)
        assert traces == 2  # what the build saves: if Keras stops tracing twice, this says so
        assert built_first == keras_way


_MIRRORED_BUILD = """
import importlib
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
model_module = importlib.import_module("kubetfx.components.trainer.model")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    inputs = keras.Input(shape=(2,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
data = tf.data.Dataset.from_tensor_slices(({"x": tf.zeros([8, 2])}, tf.zeros([8], tf.int32))).batch(4)
model_module.build_training_state(model, data)  # outside the scope, as the Trainer calls it
state = list(model.optimizer.variables) + [v for m in model.metrics for v in m.variables]
mirrored = [isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in state]
assert model.optimizer.built and state and all(mirrored), mirrored
print("mirrored", len(state))
"""


def test_the_training_state_of_a_model_made_under_a_strategy_is_built_in_its_scope() -> None:
    """A model made under MirroredStrategy (the Trainer's choice for several GPUs) gets its
    optimizer's and metrics' variables mirrored, as Keras' own build makes them: two
    logical CPU devices stand in for the GPUs (fresh process: devices are set before
    TensorFlow starts)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED_BUILD], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mirrored" in done.stdout


def test_the_stopper_counts_epochs_without_improvement() -> None:
    stopper = Stopper(patience=2, min_delta=0.01)
    steps = [stopper.update(e, loss, 0.5) for e, loss in enumerate([1.0, 0.8, 0.795, 0.81, 0.7], 1)]
    # 0.795 is not better than 0.8 by more than 0.01; the second such epoch stops.
    assert steps == [(True, False), (True, False), (False, False), (False, True), (True, False)]
    assert stopper.best_epoch == 5 and stopper.best_loss == 0.7


def test_the_holdout_is_seeded_disjoint_and_complete() -> None:
    kept, held = holdout(1000, 0.1, seed=42)
    assert len(held) == 100 and len(kept) == 900
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(1000))
    assert holdout(1000, 0.1, seed=42)[1].tolist() == held.tolist()
    assert holdout(1000, 0.1, seed=7)[1].tolist() != held.tolist()
    assert len(holdout(60, 0.1, seed=1)[1]) == 12  # small data: at least a fifth, up to 20 rows


def test_roc_auc() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(np.array([0, 1, 1]), np.array([0.5, 0.5, 0.9])) == 0.75  # a tie counts a half
    three = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    assert roc_auc(np.array([0, 1, 2, 0]), three) == 1.0
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_holdout_metrics_are_cross_entropy_and_accuracy() -> None:
    loss, accuracy = holdout_metrics(np.array([[0.9], [0.2], [0.6]]), np.array([1, 0, 0]))
    assert loss == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
    assert accuracy == pytest.approx(2 / 3)
    loss, accuracy = holdout_metrics(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), np.array([0, 1]))
    assert loss == pytest.approx(-(np.log(0.7) + np.log(0.1)) / 2)
    assert accuracy == 0.5


def _prepare(root: Path, uri: str, label: str) -> dict[str, str]:
    paths = {k: str(root / k) for k in ("examples", "statistics", "schema")}
    example_gen.run(uri, paths["examples"])
    statistics_gen.run(paths["examples"], paths["statistics"])
    schema_gen.run(paths["statistics"], paths["schema"], label_key=label)
    return paths


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> dict[str, str]:
    return _prepare(tmp_path_factory.mktemp("penguins"), "pkg://palmerpenguins/data/penguins.csv", "species")


_MIRRORED_TRAINING = """
import importlib, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
trainer = importlib.import_module("kubetfx.components.trainer.executor")
trainer.choose_strategy = lambda tf: (
    tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "MirroredStrategy", "2 logical CPUs", False
)
examples, schema, statistics, out = sys.argv[1:5]
result = trainer.run(examples, schema, statistics, out, label_key="species",
                     hyperparameters={"epochs": 30, "steps_per_execution": 4})
print(json.dumps({"strategy": result.strategy, "stopped": result.stopped, "metrics": result.metrics,
                  "steps_per_execution": result.hyperparameters["steps_per_execution"],
                  "warnings": result.warnings}))
"""


def test_the_trainer_trains_under_mirrored_strategy(penguins, tmp_path: Path) -> None:
    """Several GPUs: MirroredStrategy, two logical CPU devices standing in (fresh process).
    Keras 3's loop of several steps per call fails under it, so the Trainer takes one step
    per call and says so when the value was the user's; the held-out scores have one row
    per example (``predict_on_batch`` gives every replica the whole batch)."""
    import json
    import subprocess
    import sys

    args = [penguins["examples"], penguins["schema"], penguins["statistics"], str(tmp_path / "model")]
    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED_TRAINING, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy"
    assert result["steps_per_execution"] == 1
    assert any("steps_per_execution 4 is not possible on several GPUs" in w for w in result["warnings"])
    assert result["stopped"] in ("early", "ceiling")
    assert result["metrics"]["val_accuracy"] >= 0.9


@pytest.mark.parametrize("extra", [{}, {"stream_rows": 0}], ids=["in-memory", "streamed"])
def test_it_stops_early_records_why_and_keeps_the_best_weights(penguins, tmp_path: Path, extra) -> None:
    import keras
    from kubetfx.components.trainer.model import FeatureSpec, encode_features, encode_labels

    # A high learning rate with a ceiling of 200: the held-out loss stops improving long before.
    hp = {"epochs": 200, "patience": 3, "learning_rate": 0.05, **extra}
    result = trainer.run(
        penguins["examples"],
        penguins["schema"],
        penguins["statistics"],
        str(tmp_path / "model"),
        label_key="species",
        hyperparameters=hp,
    )
    assert result.stopped == "early" and result.epochs < 200
    assert result.epochs == result.best_epoch + 3  # three epochs without improvement after the best
    assert f"stopped at epoch {result.epochs} of 200" in result.stop_reason
    assert f"epoch {result.best_epoch}'s weights restored" in result.stop_reason
    assert result.stop_summary == f"early {result.epochs}/200, best {result.best_epoch}"
    meta = result.metadata()
    assert (meta["epochs"], meta["best_epoch"], meta["stopped"]) == (
        result.epochs,
        result.best_epoch,
        "early",
    )
    # The saved model has the best epoch's weights: its loss on the held-out train rows is
    # the best recorded, not the last epoch's.
    spec = FeatureSpec.from_json((tmp_path / "model/feature_spec.json").read_text())
    model = keras.saving.load_model(str(tmp_path / "model/keras/model.keras"))
    columns = trainer._columns(read_split(penguins["examples"], "train"))
    inputs, labels = encode_features(spec, columns), encode_labels(spec, columns["species"])
    _, held = holdout(len(labels), 0.1, seed=42)
    assert len(held) == result.validation_rows
    scores = model.predict({k: v[held] for k, v in inputs.items()}, verbose=0)
    loss, _ = holdout_metrics(scores, labels[held])
    assert loss == pytest.approx(result.metrics["holdout_loss"], abs=1e-5)


@pytest.mark.parametrize(
    ("uri", "label", "exclude"),
    [
        ("pkg://palmerpenguins/data/penguins.csv", "species", []),
        ("pkg://vega_datasets/_data/seattle-weather.csv", "weather", ["date"]),
    ],
    ids=["penguins", "seattle-weather"],
)
def test_early_stopping_keeps_the_quality_of_a_fixed_30_epochs(
    tmp_path: Path, uri: str, label: str, exclude: list[str]
) -> None:
    paths = _prepare(tmp_path, uri, label)
    found = {}
    fixed = {"epochs": 30, "batch_size": 32, "patience": 0, "steps_per_execution": 32}  # as before
    for name, hp in (("fixed", fixed), ("early", {"epochs": 30})):
        result = trainer.run(
            paths["examples"],
            paths["schema"],
            paths["statistics"],
            str(tmp_path / name),
            label_key=label,
            hyperparameters=hp,
            exclude_features=exclude,
        )
        found[name] = {
            "auc": result.metrics["val_auc"],
            "accuracy": result.metrics["val_accuracy"],
            "epochs": result.epochs,
        }
    assert found["fixed"]["epochs"] == 30 and found["early"]["epochs"] <= 30
    assert found["early"]["auc"] >= found["fixed"]["auc"] - AUC_TOLERANCE, found
    assert found["early"]["accuracy"] >= found["fixed"]["accuracy"] - ACCURACY_TOLERANCE, found
