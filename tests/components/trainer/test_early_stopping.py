"""Early stopping and sizing of the built-in model: the rule's arithmetic, what is recorded,
the best weights restored, and quality kept against a fixed number of epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.trainer import executor as trainer
from kubetfx.components.trainer.model import (
    HyperParameters,
    Stopper,
    choose_batch_size,
    choose_steps_per_execution,
    holdout,
    holdout_metrics,
    roc_auc,
)

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
    assert choose_steps_per_execution(100_000, 512) == 64
    sized = HyperParameters().sized(15_000)
    assert (sized.batch_size, sized.steps_per_execution) == (64, 64)
    given = HyperParameters(batch_size=16, steps_per_execution=3).sized(15_000)
    assert (given.batch_size, given.steps_per_execution) == (16, 3)  # explicit values honoured


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


def test_it_stops_early_records_why_and_keeps_the_best_weights(penguins, tmp_path: Path) -> None:
    import keras
    from kubetfx.components.trainer.model import FeatureSpec, encode_features, encode_labels

    # A high learning rate with a ceiling of 200: the held-out loss stops improving long before.
    hp = {"epochs": 200, "patience": 3, "learning_rate": 0.05}
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
