"""The Trainer on real TensorFlow: the built-in model, its serving signature, determinism,
and user modules with TFX's run_fn contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kfp import dsl
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.trainer import executor as trainer
from kubetfx.components.trainer import outputs

from kubetfx.artifacts.examples import read_split, split_files
from kubetfx.errors import InputDataError, KubetfxError, ParameterError
from kubetfx.tfrecord import read_tfrecord_gz

CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("prepared")
    example_gen.run("pkg://palmerpenguins/data/penguins.csv", str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    schema_gen.run(str(root / "statistics"), str(root / "schema"), schema_file=CURATED, label_key="species")
    return {k: str(root / k) for k in ("examples", "statistics", "schema")}


def _train(prepared, model_dir: Path, **kwargs) -> trainer.TrainResult:
    return trainer.run(
        prepared["examples"],
        prepared["schema"],
        prepared["statistics"],
        str(model_dir),
        label_key="species",
        **kwargs,
    )


def test_built_in_model_trains_exports_and_serves_tf_examples(prepared, tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    result = _train(prepared, tmp_path / "model", hyperparameters={"epochs": 15})
    assert result.metrics["val_accuracy"] > 0.9
    assert result.device == "CPU" and result.strategy == "default" and result.mixed_precision is False
    # Early stopping by default: at most 15 epochs, on the train rows not held out to stop
    # by; a batch of 32 chosen for 200-odd rows.
    assert result.hyperparameters["batch_size"] == 32 and result.sized == [
        "batch_size",
        "steps_per_execution",
    ]
    assert 1 <= result.best_epoch <= result.epochs <= 15 and result.stopped in ("early", "ceiling")
    fit_rows = result.train_examples - result.validation_rows
    assert result.validation_rows > 0 and result.steps == result.epochs * -(-fit_rows // 32)
    meta = result.metadata()
    assert meta["kubetfx_type"] == "kubetfx.Model" and meta["hyperparameters"]["epochs"] == 15
    assert meta["epochs_ceiling"] == 15 and meta["stop_reason"] == result.stop_reason
    serving = tf.saved_model.load(str(tmp_path / "model/Format-Serving"))
    records = [r for f in split_files(prepared["examples"], "eval") for r in read_tfrecord_gz(f)]
    out = serving.signatures["serving_default"](examples=tf.constant(records))
    assert out["probabilities"].shape == (len(records), 3)
    assert set(out["classes"].numpy()) <= {b"Adelie", b"Chinstrap", b"Gentoo"}
    # The signature replays exactly the preprocessing training used (no skew).
    model = keras.saving.load_model(str(tmp_path / "model/keras/model.keras"))
    spec = trainer.FeatureSpec.from_json((tmp_path / "model/feature_spec.json").read_text())
    table = read_split(prepared["examples"], "eval")
    direct = model.predict(trainer.encode_features(spec, trainer._columns(table)), verbose=0)
    assert np.abs(direct - out["probabilities"].numpy()).max() < 1e-5
    labels = trainer.encode_labels(spec, table.column("species").to_pylist())
    accuracy = float((out["class_ids"].numpy() == labels).mean())
    assert accuracy == pytest.approx(result.metrics["val_accuracy"], abs=1e-6)
    # The SavedModel is for serving: the model's weights (and the vocabulary tables), not
    # the optimizer's state; that stays in model.keras, for training on from it.
    checkpoint = tmp_path / "model/Format-Serving/variables/variables"
    saved = {name for name, _ in tf.train.list_variables(str(checkpoint))}
    assert not [name for name in saved if "optimizer" in name.lower()]
    assert len([name for name in saved if name.startswith("model_weights/")]) == len(model.weights)
    assert model.optimizer.iterations.numpy() == result.steps
    _check_published(result, tmp_path / "published")


def _check_published(result: trainer.TrainResult, out: Path) -> None:
    """What the component's body hands KFP: metadata, report, UI metrics, parameters."""
    out.mkdir()
    model, report = (dsl.Artifact(uri=str(out / n), metadata={}) for n in ("model", "report"))
    metrics = dsl.Metrics(uri=str(out / "metrics"), metadata={})
    published = outputs.publish(result, model=model, report=report, metrics=metrics, label_key="species")
    assert published == (
        result.metrics["val_accuracy"],
        result.device,
        result.short_warnings(),
        result.epochs,
        result.stop_summary,
    )
    assert model.metadata == result.metadata()
    assert "species" in Path(report.path).read_text()
    assert metrics.metadata == result.metrics


def test_hyperparameters_from_the_component_parameters() -> None:
    given = {
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 0.1,
        "hidden_units": ["4"],
        "dropout": 0.1,
        "seed": 1,
        "patience": 3,
        "min_delta": 0.001,
        "validation_fraction": 0.2,
        "steps_per_execution": 4,
        "stream_rows": 1000,
    }
    assert outputs.hyperparameters(module_file="", **given) == {**given, "hidden_units": [4]}
    assert outputs.hyperparameters(module_file="my_module.py", **given) == {}


def test_same_inputs_and_parameters_give_the_same_metrics(prepared, tmp_path: Path) -> None:
    a = _train(prepared, tmp_path / "a", hyperparameters={"epochs": 3})
    b = _train(prepared, tmp_path / "b", hyperparameters={"epochs": 3})
    assert a.metrics == b.metrics
    assert a.weights_sha256 == b.weights_sha256 and (a.epochs, a.best_epoch) == (b.epochs, b.best_epoch)
    c = _train(prepared, tmp_path / "c", hyperparameters={"epochs": 3, "seed": 7})
    assert c.metrics != a.metrics


def test_bad_hyper_parameters_and_labels_are_named(prepared, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown hyper-parameter 'epoch'"):
        _train(prepared, tmp_path / "x", hyperparameters={"epoch": 3})
    with pytest.raises(ParameterError, match="dropout 1.5"):
        _train(prepared, tmp_path / "y", hyperparameters={"dropout": 1.5})
    with pytest.raises(ParameterError, match="patience -1"):
        _train(prepared, tmp_path / "y", hyperparameters={"patience": -1})
    with pytest.raises(ParameterError, match="validation_fraction 0.7"):
        _train(prepared, tmp_path / "y", hyperparameters={"validation_fraction": 0.7})
    with pytest.raises(InputDataError, match="label_key 'kind' is not in the schema"):
        trainer.run(
            prepared["examples"],
            prepared["schema"],
            prepared["statistics"],
            str(tmp_path / "z"),
            label_key="kind",
        )


USER_MODULE = """
import keras
import tensorflow as tf

def run_fn(fn_args):
    assert fn_args.train_files and fn_args.eval_files and fn_args.label_key == "species"
    assert fn_args.train_data.num_rows > 100 and fn_args.custom_config == {"note": "hi"}
    assert fn_args.exclude_features == ["island"]
    inputs = keras.Input(shape=(1,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, examples):
            parsed = tf.io.parse_example(examples, {"year": tf.io.FixedLenFeature([1], tf.int64)})
            return {"score": self.model(tf.cast(parsed["year"], tf.float32))}

    module = Serving()
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
    return {"custom_metric": 0.5}
"""


def test_user_module_run_fn(prepared, tmp_path: Path) -> None:
    module = tmp_path / "my_model.py"
    module.write_text(USER_MODULE)
    result = _train(
        prepared,
        tmp_path / "m",
        module_file=str(module),
        custom_config={"note": "hi"},
        exclude_features=["island"],
    )
    assert result.metrics == {"custom_metric": 0.5} and result.excluded_features == ["island"]
    assert result.model_source.startswith("module my_model.py sha ")
    assert (tmp_path / "m/Format-Serving/saved_model.pb").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def train(fn_args):\n    pass\n", r"defines no run_fn\(fn_args\)"),
        (
            "def run_fn(fn_args):\n    raise RuntimeError('out of cheese')\n",
            "run_fn raised RuntimeError: out of cheese",
        ),
        ("import not_a_module_anywhere\n", "importing the module failed: ModuleNotFoundError"),
        ("def run_fn(fn_args):\n    return {}\n", "run_fn wrote no SavedModel"),
    ],
)
def test_broken_user_modules_are_named(prepared, tmp_path: Path, source: str, message: str) -> None:
    module = tmp_path / "broken_module.py"
    module.write_text(source)
    with pytest.raises(KubetfxError, match=message) as err:
        _train(prepared, tmp_path / "m", module_file=str(module))
    assert "broken_module.py" in str(err.value)
    with pytest.raises(InputDataError, match="module file not found"):
        _train(prepared, tmp_path / "m2", module_file=str(tmp_path / "nope.py"))


def test_a_label_with_one_class_is_refused(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i % 5},same" for i in range(60))
    (tmp_path / "one.csv").write_text(f"x,y,label\n{rows}\n")
    example_gen.run(str(tmp_path / "one.csv"), str(tmp_path / "ex"))
    statistics_gen.run(str(tmp_path / "ex"), str(tmp_path / "st"))
    schema_gen.run(str(tmp_path / "st"), str(tmp_path / "sc"), label_key="label")
    with pytest.raises(InputDataError, match="label 'label' has 1 class"):
        trainer.run(
            str(tmp_path / "ex"),
            str(tmp_path / "sc"),
            str(tmp_path / "st"),
            str(tmp_path / "m"),
            label_key="label",
        )
