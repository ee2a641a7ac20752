"""The TFX benchmark's model file stays in step with the Trainer's built-in model.

``benchmarks/tfx_trainer_module.py`` runs inside TFX's Trainer, in an environment without
kubetfx, so it is a copy of ``components/trainer/model.py`` and ``export.py``; the
comparison with TFX means something only while the copy trains and serves the same model.
Each test feeds both the same input and asks for the same answer: the feature spec from
a schema, the encoding of raw columns and labels, the Keras model's layers and compile
settings, the arguments of ``fit``, the hyper-parameter defaults and what the exported
serving signature returns. The allowed differences are how ``fit`` is executed (steps
per ``tf.function`` call, validation batch size; see the module file's docstring) and how
long and in what batches the Trainer trains (early stopping; the batch size chosen for the
data's size): the copy trains every epoch at batch 32, as a TFX template does.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from kubetfx.components.trainer import model as trainer_model
from kubetfx.components.trainer.model import Feature, FeatureSpec, HyperParameters

MODULE_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "tfx_trainer_module.py"

# kubetfx's Trainer runs fit faster than Keras' defaults; the TFX module keeps the defaults.
TRAINER_ONLY_FIT = {"validation_batch_size"}
TRAINER_STEPS_PER_EXECUTION = 32

# Every kind of feature the built-in model handles: a numeric column whose name Keras
# refuses, an integer one, a small vocabulary (one-hot), a large one (embedded), and one
# left out of the TRAINING environment.
SCHEMA = """
feature { name: "bill length (mm)" type: FLOAT }
feature { name: "year" type: INT }
feature { name: "island" type: BYTES domain: "island" }
feature { name: "code" type: BYTES string_domain { CODES } }
feature { name: "comment" type: BYTES not_in_environment: "TRAINING" }
feature { name: "species" type: BYTES domain: "species" }
feature { name: "adelie" type: BYTES }
string_domain { name: "island" value: "Biscoe" value: "Dream" value: "Torgersen" }
string_domain { name: "species" value: "Adelie" value: "Chinstrap" value: "Gentoo" }
""".replace("CODES", " ".join(f'value: "c{i}"' for i in range(20)))

ROWS = 24


def _columns() -> dict[str, list[Any]]:
    """Columns as the Trainer reads them (Arrow lists, None when missing), with gaps."""
    islands, species = ["Biscoe", "Dream", "Torgersen", "Atlantis"], ["Adelie", "Chinstrap", "Gentoo"]
    return {
        "bill length (mm)": [None if i % 7 == 3 else [35.0 + (i * 37 % 17)] for i in range(ROWS)],
        "year": [[2007 + i % 3] for i in range(ROWS)],
        "island": [None if i % 9 == 5 else [islands[i % 4].encode()] for i in range(ROWS)],
        "code": [[f"c{i % 23}".encode()] for i in range(ROWS)],
        "comment": [[b"free text"] for _ in range(ROWS)],
        "species": [[species[i % 3].encode()] for i in range(ROWS)],
        "adelie": [[b"yes" if i % 3 == 0 else b"no"] for i in range(ROWS)],
    }


@pytest.fixture(scope="module")
def copy() -> ModuleType:
    """The module file, loaded by path as TFX loads it."""
    spec = importlib.util.spec_from_file_location("tfx_trainer_module", MODULE_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema(label: str) -> Any:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(SCHEMA, schema_pb2.Schema())
    other = "adelie" if label == "species" else "species"
    kept = [f for f in schema.feature if f.name != other]
    del schema.feature[:]
    schema.feature.extend(kept)
    return schema


def _statistics(columns: dict[str, list[Any]]) -> Any:
    """The train split's statistics as TFDV computes them: mean and population std_dev."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = statistics.datasets.add()
    for name in ("bill length (mm)", "year"):
        values = np.array([v[0] if v else np.nan for v in columns[name]], dtype=np.float64)
        feature = dataset.features.add()
        feature.path.step.append(name)
        feature.num_stats.mean = float(np.nanmean(values))
        feature.num_stats.std_dev = float(np.nanstd(values))
    return statistics


def _both_specs(copy: ModuleType, label: str) -> tuple[FeatureSpec, list[dict], list[str]]:
    import pyarrow as pa
    from kubetfx.components.trainer.executor import feature_spec

    columns = _columns()
    schema = _schema(label)
    table = pa.table({name: columns[name] for name in [f.name for f in schema.feature]})
    trainer = feature_spec(schema, _statistics(columns), label, table)
    features, classes = copy._features(schema, label, columns)
    return trainer, features, classes


def test_the_copy_imports_nothing_of_kubetfx() -> None:
    tree = ast.parse(MODULE_FILE.read_text())
    imported = {
        name
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [getattr(node, "module", "") or ""]
        )
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    assert not [name for name in imported if name.split(".")[0] == "kubetfx"]


# The Trainer's own knobs for how long and in what batches it trains (early stopping, batch
# size and steps per call chosen for the data's size), and from how many rows it streams
# its input instead of holding it. The copy trains as a TFX template does: every epoch, at
# batch 32, from memory.
TRAINER_ONLY_HP = {"patience", "min_delta", "validation_fraction", "steps_per_execution", "stream_rows"}


def test_the_hyperparameter_defaults_are_the_trainers(copy: ModuleType) -> None:
    trainer = {k: v for k, v in asdict(HyperParameters()).items() if k not in TRAINER_ONLY_HP}
    assert trainer.pop("batch_size") == 0  # chosen for the data's size
    assert copy.DEFAULT_HYPERPARAMETERS == {**trainer, "batch_size": 32}
    assert copy.ONE_HOT_MAX == trainer_model.ONE_HOT_MAX
    assert tuple(copy.OUTPUT_LAYERS) == trainer_model.OUTPUT_LAYERS


@pytest.mark.parametrize("label", ["species", "adelie"])
def test_the_feature_spec_from_a_schema_is_the_trainers(copy: ModuleType, label: str) -> None:
    trainer, features, classes = _both_specs(copy, label)
    assert [Feature(**f) for f in features] == trainer.features
    assert classes == trainer.classes


def test_values_are_read_as_the_trainer_reads_them(copy: ModuleType) -> None:
    values = [
        None,
        math.nan,
        math.inf,
        -math.inf,
        [],
        [3.0],
        (b"x",),
        np.array([2.5]),
        1.0,
        2.5,
        b"\xff",
        "s",
        7,
    ]
    for value in values:
        assert copy._first(value, "d") == trainer_model._first(value, "d"), value
        assert copy._text(trainer_model._first(value, None)) == trainer_model._text(
            trainer_model._first(value, None)
        )
        assert copy._label_text(value) == trainer_model.label_text(value), value
    names = ["bill length (mm)", "Delta 15 N (o/oo)", "1st", "probabilities", "a b", "a_b", "", "__x__"]
    assert copy._safe_names(names) == trainer_model.safe_names(names)


@pytest.mark.parametrize("label", ["species", "adelie"])
def test_columns_and_labels_are_encoded_as_the_trainer_encodes_them(copy: ModuleType, label: str) -> None:
    trainer, features, classes = _both_specs(copy, label)
    columns = _columns()
    mine, theirs = copy._encode(features, columns), trainer_model.encode_features(trainer, columns)
    assert mine.keys() == theirs.keys()
    for key in theirs:
        assert mine[key].dtype == theirs[key].dtype and mine[key].shape == theirs[key].shape, key
        np.testing.assert_array_equal(mine[key], theirs[key])
    np.testing.assert_array_equal(
        copy._labels(classes, columns[label]), trainer_model.encode_labels(trainer, columns[label])
    )


def _models(copy: ModuleType, label: str, **overrides: Any) -> tuple[Any, Any, FeatureSpec, list[dict]]:
    import keras

    trainer, features, classes = _both_specs(copy, label)
    hp = {**copy.DEFAULT_HYPERPARAMETERS, **overrides}
    keras.utils.set_random_seed(hp["seed"])
    theirs = trainer_model.build_model(trainer, HyperParameters(**hp))
    keras.utils.set_random_seed(hp["seed"])
    mine = copy._build(features, classes, hp)
    return mine, theirs, trainer, features


@pytest.mark.parametrize(
    ("label", "overrides"),
    [("species", {}), ("adelie", {"hidden_units": [8, 4], "dropout": 0.25, "learning_rate": 0.003})],
    ids=["three-classes-defaults", "binary-with-dropout"],
)
def test_the_model_has_the_trainers_layers_and_compile_settings(
    copy: ModuleType, label: str, overrides: dict[str, Any]
) -> None:
    mine, theirs, _, _ = _models(copy, label, **overrides)
    config, expected = mine.get_config(), theirs.get_config()
    config.pop("name"), expected.pop("name")  # Keras numbers models it names itself
    assert config == expected
    compiled, expected = mine.get_compile_config(), theirs.get_compile_config()
    compiled["optimizer"]["config"].pop("name"), expected["optimizer"]["config"].pop("name")  # adam, adam_1
    assert (compiled.pop("steps_per_execution"), expected.pop("steps_per_execution")) == (
        1,
        TRAINER_STEPS_PER_EXECUTION,
    )
    assert compiled == expected
    for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same seed, same layers: same initial weights


class _Recorder:
    """Stands in for a Keras model: records what ``fit`` is given."""

    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        self.args, self.kwargs = args, kwargs
        return type("History", (), {"history": {"loss": [0.5]}})()


def test_fit_is_called_as_the_trainer_calls_it(copy: ModuleType) -> None:
    hp = {**copy.DEFAULT_HYPERPARAMETERS, "epochs": 3, "batch_size": 64}
    data = ({"a": np.zeros((2, 1))}, np.zeros(2), {"a": np.ones((2, 1))}, np.ones(2))
    mine, theirs = _Recorder(), _Recorder()
    copy._fit(mine, *data, hp)
    trainer_model.train(theirs, *data, HyperParameters(**hp))
    assert mine.args == theirs.args
    theirs.kwargs.pop("callbacks")  # the Trainer's fault-injection hook, a no-op outside tests
    assert {k: v for k, v in theirs.kwargs.items() if k not in TRAINER_ONLY_FIT} == mine.kwargs
    assert TRAINER_ONLY_FIT <= theirs.kwargs.keys()


@pytest.mark.parametrize("label", ["species", "adelie"])
def test_the_serving_signature_answers_as_the_trainers(copy: ModuleType, label: str, tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from kubetfx.components.trainer.export import export_serving

    model, _, trainer, features = _models(copy, label)
    export_serving(model, trainer, str(tmp_path / "trainer"))
    copy._export(model, features, trainer.classes, str(tmp_path / "copy"))

    def example(**values: Any) -> bytes:
        feature = {}
        for name, value in values.items():
            if isinstance(value, bytes):
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
            elif isinstance(value, int):
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    examples = tf.constant(
        [
            example(**{"bill length (mm)": 39.1, "year": 2008, "island": b"Dream", "code": b"c3"}),
            example(**{"year": 2009, "island": b"Atlantis", "code": b"c19"}),  # missing, unknown
            example(**{"bill length (mm)": 51.0, "code": b"zz"}),
            example(),
        ]
    )
    answers = [
        tf.saved_model.load(str(tmp_path / name)).signatures["serving_default"](examples=examples)
        for name in ("copy", "trainer")
    ]
    assert answers[0].keys() == answers[1].keys() == {"probabilities", "class_ids", "classes", "all_classes"}
    for key in answers[1]:
        np.testing.assert_array_equal(answers[0][key].numpy(), answers[1][key].numpy(), err_msg=key)
