"""Data and models the Evaluator's tests share: trained once per session, on real
TensorFlow, from the penguins data (three classes) and a binary relabelling of it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kubetfx.fingerprint import local_path

CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"
RULE_MODULE = str(Path(__file__).with_name("rule_model.py"))
HP = {
    "epochs": 15,
    "batch_size": 32,
    "learning_rate": 0.01,
    "hidden_units": [16],
    "dropout": 0.0,
    "seed": 1,
}


@pytest.fixture(scope="session")
def penguins(prepare_data, train_model) -> dict[str, str]:
    """Penguins examples and three models: good, weak (barely trained), unfair (a rule)."""
    prepared = prepare_data("pkg://palmerpenguins/data/penguins.csv", "species", CURATED)
    data = prepared.paths()
    data["good"] = train_model(prepared, "species", hyperparameters=HP).path
    weak = {**HP, "epochs": 1, "learning_rate": 1e-5}
    data["weak"] = train_model(prepared, "species", hyperparameters=weak).path
    data["unfair"] = train_model(prepared, "species", module_file=RULE_MODULE).path
    return data


@pytest.fixture(scope="session")
def adelie(tmp_path_factory: pytest.TempPathFactory, prepare_data, train_model) -> dict[str, str]:
    """A binary label (``adelie``: yes/no) and a model trained on it."""
    root = tmp_path_factory.mktemp("adelie")
    source = root / "adelie.csv"
    with (
        open(local_path("pkg://palmerpenguins/data/penguins.csv")) as f,
        open(source, "w", newline="") as out,
    ):
        rows = list(csv.DictReader(f))
        writer = csv.DictWriter(out, [k for k in rows[0] if k != "species"] + ["adelie"])
        writer.writeheader()
        for row in rows:
            row["adelie"] = "yes" if row.pop("species") == "Adelie" else "no"
            writer.writerow(row)
    prepared = prepare_data(str(source), "adelie", "")
    data = prepared.paths()
    hp = {**HP, "epochs": 10, "hidden_units": [8]}
    data["model"] = train_model(prepared, "adelie", hyperparameters=hp).path
    return data


# A binary label whose fairness gaps the test sets exactly: an eval split written example
# by example and a rule model that predicts P(yes) = score / 100.
CAUGHT, MISSED, NEGATIVE = 90, 30, 10  # scores: over, under, under the 0.5 threshold


def _write_groups(examples_dir: Path, groups: dict[str, tuple[int, int, int]]) -> str:
    """An eval split (TFX's layout) with, per ``group`` value, (caught positives, missed
    positives, negatives): positives have ``label`` yes and score 90 or 30, negatives no
    and score 10, so at threshold 0.5 a group's FNR is missed / (caught + missed)."""
    import tensorflow as tf

    def example(group: str, label: str, score: int) -> bytes:
        feature = {
            "group": tf.train.Feature(bytes_list=tf.train.BytesList(value=[group.encode()])),
            "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
            "score": tf.train.Feature(int64_list=tf.train.Int64List(value=[score])),
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    split = examples_dir / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as out:
        for group, (caught, missed, negatives) in groups.items():
            for label, score, count in (
                ("yes", CAUGHT, caught),
                ("yes", MISSED, missed),
                ("no", NEGATIVE, negatives),
            ):
                for _ in range(count):
                    out.write(example(group, label, score))
    return str(examples_dir)


@pytest.fixture(scope="session")
def score_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A binary rule model (classes no, yes): P(yes) = score / 100."""
    import tensorflow as tf

    class Score(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(
                examples, {"score": tf.io.FixedLenFeature([1], tf.int64, default_value=[0])}
            )
            yes = tf.cast(tf.reshape(parsed["score"], [-1]), tf.float32) / 100.0
            batch = tf.shape(examples)[0]
            return {
                "probabilities": tf.stack([1.0 - yes, yes], axis=1),
                "all_classes": tf.tile(tf.constant([["no", "yes"]]), [batch, 1]),
            }

    root = tmp_path_factory.mktemp("score_model")
    module = Score()
    tf.saved_model.save(module, str(root / "Format-Serving"), signatures={"serving_default": module.serve})
    return str(root)


@pytest.fixture
def write_groups(tmp_path: Path):
    """Writes an eval split of the given groups (see ``_write_groups``); returns its folder."""
    made = []

    def write(groups: dict[str, tuple[int, int, int]]) -> str:
        made.append(1)
        return _write_groups(tmp_path / f"groups{len(made)}", groups)

    return write


@pytest.fixture(scope="session")
def groups_gap(tmp_path_factory: pytest.TempPathFactory, score_model: str) -> dict[str, str]:
    """Hundreds of positives in groups a (none missed) and b (half missed), two in c."""
    examples = _write_groups(
        tmp_path_factory.mktemp("groups_gap"), {"a": (300, 0, 100), "b": (150, 150, 100), "c": (0, 2, 300)}
    )
    return {"examples": examples, "model": score_model}


@pytest.fixture(scope="session")
def nan_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A penguins model (the three species) whose training diverged on part of the input:
    NaN probabilities for a flipper over 206 mm, a fixed answer otherwise."""
    import tensorflow as tf

    classes = ["Adelie", "Chinstrap", "Gentoo"]

    class Diverged(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(
                examples, {"flipper_length_mm": tf.io.FixedLenFeature([1], tf.int64, default_value=[0])}
            )
            long = tf.reshape(parsed["flipper_length_mm"], [-1]) > 206
            batch = tf.shape(examples)[0]
            fixed = tf.tile(tf.constant([[0.6, 0.3, 0.1]]), [batch, 1])
            nan = tf.fill([batch, 3], float("nan"))
            return {
                "probabilities": tf.where(long[:, None], nan, fixed),
                "all_classes": tf.tile(tf.constant([classes]), [batch, 1]),
            }

    root = tmp_path_factory.mktemp("nan_model")
    module = Diverged()
    tf.saved_model.save(module, str(root / "Format-Serving"), signatures={"serving_default": module.serve})
    return str(root)


@pytest.fixture(scope="session")
def unlabelled(tmp_path_factory: pytest.TempPathFactory, prepare_data, train_model) -> dict[str, str]:
    """Penguins with the species left empty in every seventh row, and a model trained with
    ``missing_labels="drop"``."""
    root = tmp_path_factory.mktemp("unlabelled")
    source = root / "penguins.csv"
    with (
        open(local_path("pkg://palmerpenguins/data/penguins.csv")) as f,
        open(source, "w", newline="") as out,
    ):
        rows = list(csv.DictReader(f))
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        for i, row in enumerate(rows):
            if i % 7 == 3:
                row["species"] = ""
            writer.writerow(row)
    prepared = prepare_data(str(source), "species", "")
    data = prepared.paths()
    hp = {**HP, "epochs": 5}
    data["model"] = train_model(prepared, "species", hyperparameters=hp, missing_labels="drop").path
    return data
