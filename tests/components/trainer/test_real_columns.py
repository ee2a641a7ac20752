"""The built-in Trainer on real columns: headers as the data spells them (the raw LTER
penguins file), features left out, rows without a label, and the label-leak and ID checks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.trainer import checks
from kubetfx.components.trainer import executor as trainer
from kubetfx.components.trainer.report import training_html

from kubetfx.artifacts.examples import read_split, split_files
from kubetfx.errors import InputDataError, ParameterError
from kubetfx.tfrecord import read_tfrecord_gz

RAW = "pkg://palmerpenguins/data/penguins-raw.csv"  # the LTER file, original headers
QUICK = {"epochs": 2}


def _prepare(input_uri: str, root: Path, label_key: str) -> dict[str, str]:
    example_gen.run(input_uri, str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    schema_gen.run(str(root / "statistics"), str(root / "schema"), label_key=label_key)
    return {k: str(root / k) for k in ("examples", "statistics", "schema")}


def _train(prepared: dict[str, str], model_dir: Path, label_key: str, **kwargs) -> trainer.TrainResult:
    kwargs.setdefault("hyperparameters", QUICK)
    return trainer.run(
        prepared["examples"],
        prepared["schema"],
        prepared["statistics"],
        str(model_dir),
        label_key=label_key,
        **kwargs,
    )


def _parsed_keys(serving_dir: Path) -> set[str]:
    """The tf.Example feature keys the serving signature parses, read from its graph."""
    import tensorflow as tf

    graph = tf.saved_model.load(str(serving_dir)).signatures["serving_default"].graph
    keys: set[str] = set()
    parses = 0
    for function in graph.as_graph_def().library.function:
        nodes = {node.name: node for node in function.node_def}
        for node in function.node_def:
            if node.op == "ParseExampleV2":
                parses += 1
                for index in (2, 3):  # sparse_keys, dense_keys: constants of the function
                    const = nodes[node.input[index].split(":")[0]]
                    keys |= {k.decode() for k in tf.make_ndarray(const.attr["value"].tensor).ravel()}
    assert parses == 1
    return keys


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, str]:
    return _prepare(RAW, tmp_path_factory.mktemp("raw"), "Species")


@pytest.fixture(scope="module")
def raw_model(raw, tmp_path_factory) -> tuple[trainer.TrainResult, Path]:
    model_dir = tmp_path_factory.mktemp("raw_model")
    return _train(raw, model_dir, "Species"), model_dir


def test_raw_penguins_headers_train_and_serve_under_their_own_names(raw, raw_model) -> None:
    import keras
    import tensorflow as tf

    result, model_dir = raw_model
    table = read_split(raw["examples"], "train")
    features = [c for c in table.column_names if c != "Species"]
    assert "Delta 15 N (o/oo)" in features and "Culmen Length (mm)" in features
    # Lineage and the serving signature speak the data's names; the model its safe ones.
    assert result.feature_keys == features
    assert result.metadata()["feature_keys"] == features
    assert _parsed_keys(model_dir / "Format-Serving") == set(features)
    model = keras.saving.load_model(str(model_dir / "keras/model.keras"))
    spec = trainer.FeatureSpec.from_json((model_dir / "feature_spec.json").read_text())
    by_name = {f.name: f.key for f in spec.features}
    assert by_name["Delta 15 N (o/oo)"] == "Delta_15_N_o_oo"
    assert sorted(t.name for t in model.inputs) == sorted(by_name.values())
    # The signature, fed ExampleGen's tf.Examples (keys as in the CSV), agrees with the model.
    records = [r for f in split_files(raw["examples"], "eval") for r in read_tfrecord_gz(f)]
    out = tf.saved_model.load(str(model_dir / "Format-Serving")).signatures["serving_default"](
        examples=tf.constant(records)
    )
    eval_table = read_split(raw["examples"], "eval")
    direct = model.predict(trainer.encode_features(spec, trainer._columns(eval_table)), verbose=0)
    assert np.abs(direct - out["probabilities"].numpy()).max() < 1e-5
    assert set(out["classes"].numpy()) <= {c.encode() for c in spec.classes}


def test_the_checks_stay_quiet_on_the_penguins_data(raw_model) -> None:
    result, _ = raw_model
    # Individual ID repeats (birds sampled in several years); the isotope ratios are distinct
    # floats (measurements, not IDs); no single column gives the species away on new rows.
    assert result.warnings == [] and result.findings == []
    assert result.short_warnings() == ""
    assert max(result.single_feature_scores.values()) < checks.LEAK_BALANCED_ACCURACY
    page = training_html(result, "Training")
    assert "Delta 15 N (o/oo)" in page and "Delta_15_N_o_oo" in page and "class='warn'" not in page
    assert result.metadata()["missing_labels_dropped"] == 0


def test_exclude_features_leaves_them_out_of_model_and_signature(raw, tmp_path: Path) -> None:
    left_out = ["Individual ID", "Delta 15 N (o/oo)"]
    result = _train(raw, tmp_path / "m", "Species", exclude_features=left_out)
    assert not set(left_out) & set(result.feature_keys)
    assert result.metadata()["excluded_features"] == left_out
    parsed = _parsed_keys(tmp_path / "m/Format-Serving")
    assert parsed == set(result.feature_keys) and "Culmen Length (mm)" in parsed


def test_exclude_features_names_unknown_features_and_refuses_the_label(raw, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"exclude_features names 'Delta 15N', not a feature") as err:
        _train(raw, tmp_path / "a", "Species", exclude_features=["Delta 15N", "Sex"])
    assert "'Delta 15 N (o/oo)'" in str(err.value)  # the features it could have meant
    with pytest.raises(ParameterError, match="names the label 'Species'"):
        _train(raw, tmp_path / "b", "Species", exclude_features=["Species"])


# ---------------------------------------------------------------------- trip records


def _trips(path: Path, unlabelled: set[int]) -> dict[int, int]:
    """A trip-records CSV: ``Tip amount ($)`` leaks ``Tipped?``, ``Trip ID`` is an ID.

    Returns data row number -> the CSV line it starts on (a blank line and a multi-line
    quoted note make the two differ)."""
    rng = random.Random(7)
    lines = ["Trip ID,Distance (km),Fare/$,Payment type,Note,Tip amount ($),Tipped?"]
    starts = {}
    for i in range(240):
        if i == 50:
            lines.append("")  # a blank line: readers skip it
        distance = round(rng.uniform(0.5, 30), 2)
        card = rng.random() < 0.6
        tipped = card and rng.random() < 0.7 or (not card and rng.random() < 0.1)
        tip = round(rng.uniform(1, 6), 2) if tipped else 0.0
        note = '"two\nlines"' if i == 120 else rng.choice(["", "airport", "night"])
        label = "" if i in unlabelled else ("yes" if tipped else "no")
        starts[i] = len(lines) + 1
        lines.append(
            f"T{10000 + i * 7},{distance},{round(2.5 + distance * 1.8, 2)},"
            f"{'card' if card else 'cash'},{note},{tip},{label}"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    # The multi-line note moves every later row one line down.
    return {i: start + (1 if i > 120 else 0) for i, start in starts.items()}


UNLABELLED = {3, 77, 150, 201}


@pytest.fixture(scope="module")
def trips(tmp_path_factory) -> tuple[dict[str, str], dict[int, int]]:
    root = tmp_path_factory.mktemp("trips")
    starts = _trips(root / "trips.csv", UNLABELLED)
    return _prepare(str(root / "trips.csv"), root, "Tipped?"), starts


def test_source_rows_give_each_example_its_csv_line(trips) -> None:
    import pyarrow.parquet as pq

    prepared, starts = trips
    by_id = {f"T{10000 + i * 7}": line for i, line in starts.items()}
    for split in ("train", "eval"):
        data = read_split(prepared["examples"], split)
        sources = pq.read_table(Path(prepared["examples"], f"Split-{split}", "source_rows.parquet"))
        assert sources.num_rows == data.num_rows
        ids = data.column("Trip ID").to_pylist()
        assert sources.column("line").to_pylist() == [by_id[i] for i in ids]
        assert set(sources.column("file").to_pylist()) == {"trips.csv"}
        assert "Trip ID" in data.column_names and "line" not in data.column_names


# The same checks with the input streamed (stream_rows=0: a split of any size is streamed).
STREAMED = {"epochs": 2, "stream_rows": 0}
INPUTS = pytest.mark.parametrize("hp", [QUICK, STREAMED], ids=["in-memory", "streamed"])


@INPUTS
def test_missing_labels_fail_by_default_naming_the_csv_lines(trips, tmp_path: Path, hp) -> None:
    prepared, starts = trips
    with pytest.raises(InputDataError) as err:
        _train(prepared, tmp_path / "m", "Tipped?", hyperparameters=hp)
    message = str(err.value)
    lines = sorted(starts[i] for i in UNLABELLED)
    assert f"trips.csv lines {', '.join(str(n) for n in lines)}" in message
    assert "label 'Tipped?' is missing (empty or NaN) in 4 row(s)" in message
    assert "missing_labels='drop'" in message
    with pytest.raises(InputDataError, match="trips.csv lines"):
        _train(prepared, tmp_path / "m2", "Tipped?", missing_labels="fail")


@INPUTS
def test_missing_labels_dropped_on_request_with_the_lines_named(trips, tmp_path: Path, hp) -> None:
    prepared, starts = trips
    result = _train(prepared, tmp_path / "m", "Tipped?", missing_labels="drop", hyperparameters=hp)
    assert ("(input streamed)" in result.stop_reason) == (hp is STREAMED)
    meta = result.metadata()
    assert meta["missing_labels"] == "drop" and meta["missing_labels_dropped"] == len(UNLABELLED)
    total = sum(read_split(prepared["examples"], s).num_rows for s in ("train", "eval"))
    assert result.train_examples + result.eval_examples == total - len(UNLABELLED)
    dropped = [w for w in result.warnings if w.startswith("dropped 4 row(s)")]
    assert dropped and f"trips.csv lines {starts[3]}, {starts[77]}" in dropped[0]
    assert "dropped 4 row(s) without a label" in result.short_warnings()


@INPUTS
def test_leak_and_id_columns_are_warned_about(trips, tmp_path: Path, hp) -> None:
    prepared, _ = trips
    result = _train(prepared, tmp_path / "m", "Tipped?", missing_labels="drop", hyperparameters=hp)
    found = {(f["kind"], f["feature"]) for f in result.findings}
    assert found == {("label_leak", "Tip amount ($)"), ("id_like", "Trip ID")}
    leak = next(w for w in result.warnings if "Tip amount ($)" in w)
    assert "probable label leak" in leak and "exclude_features=['Tip amount ($)']" in leak
    assert result.metadata()["warnings"] == result.warnings
    assert "probable label leak: 'Tip amount ($)'" in result.short_warnings()
    assert "ID-like column: 'Trip ID'" in result.short_warnings()
    assert result.single_feature_scores["Tip amount ($)"] >= checks.LEAK_BALANCED_ACCURACY
    assert result.single_feature_scores["Payment type"] < checks.LEAK_BALANCED_ACCURACY
    page = training_html(result, "Training")
    assert "probable label leak: feature &#x27;Tip amount ($)&#x27;" in page and "Tip_amount" in page
    # Left out, they are not warned about.
    quiet = _train(
        prepared,
        tmp_path / "q",
        "Tipped?",
        missing_labels="drop",
        exclude_features=["Tip amount ($)", "Trip ID"],
    )
    assert quiet.findings == []


def test_without_source_rows_the_split_rows_are_named(trips, tmp_path: Path) -> None:
    import shutil

    prepared, _ = trips
    copy = dict(prepared, examples=str(tmp_path / "examples"))
    shutil.copytree(prepared["examples"], copy["examples"])
    for split in ("train", "eval"):
        Path(copy["examples"], f"Split-{split}", "source_rows.parquet").unlink()
    with pytest.raises(InputDataError, match=r"rows [\d, ]+ of the (train|eval) split \(0-based\)"):
        _train(copy, tmp_path / "m", "Tipped?")


def test_unknown_missing_label_policy_is_refused(trips, tmp_path: Path) -> None:
    prepared, _ = trips
    with pytest.raises(ParameterError, match="missing_labels 'skip': use 'drop' or 'fail'"):
        _train(prepared, tmp_path / "m", "Tipped?", missing_labels="skip")


# ---------------------------------------------------------------------- the checks alone


def test_safe_names_are_distinct_and_keras_safe() -> None:
    names = ["Delta 15 N (o/oo)", "Delta-15-N (o/oo)", "2nd try", "ok_name", "(%)"]
    safe = trainer.safe_names(names)
    assert safe["ok_name"] == "ok_name" and safe["Delta 15 N (o/oo)"] == "Delta_15_N_o_oo"
    assert safe["Delta-15-N (o/oo)"] == "Delta_15_N_o_oo_2" and safe["2nd try"] == "f_2nd_try"
    assert len(set(safe.values())) == len(names)
    assert all(n.replace("_", "").isalnum() and n[0].isalpha() for n in safe.values())


def test_leak_check_uses_held_out_rows_and_balanced_accuracy() -> None:
    rng = np.random.default_rng(0)
    y_train, y_eval = rng.integers(0, 2, 300), rng.integers(0, 2, 150)
    # A copy of the label, numeric: a leak.
    copy = checks.label_leak("c", "numeric", list(y_train * 3.0), y_train, list(y_eval * 3.0), y_eval, "y")
    assert copy is not None and copy.score == 1.0
    # An ID: perfect on the rows it learned from, chance on new ones: not a leak.
    ids_train, ids_eval = [f"id{i}" for i in range(300)], [f"id{i}" for i in range(300, 450)]
    assert checks.label_leak("id", "categorical", ids_train, y_train, ids_eval, y_eval, "y") is None
    # A 97%/3% label: a constant feature gets 97% accuracy but 0.5 balanced accuracy.
    rare_train = (rng.random(300) < 0.03).astype(int)
    rare_eval = np.array([1] * 5 + [0] * 145)
    const = checks.label_leak("k", "categorical", ["a"] * 300, rare_train, ["a"] * 150, rare_eval, "y")
    assert const is None


def test_id_check_flags_ids_and_counters_not_measurements() -> None:
    assert checks.id_like("Trip ID", "categorical", "bytes", [f"T{i}" for i in range(50)]) is not None
    assert checks.id_like("row", "numeric", "int", list(range(100, 150))) is not None
    # Distinct floats and widely spread integers are measurements.
    assert checks.id_like("ratio", "numeric", "float", [i / 7 for i in range(50)]) is None
    assert checks.id_like("income", "numeric", "int", [i * 997 for i in range(50)]) is None
    # A repeated value, or too few rows, is not an ID.
    assert checks.id_like("k", "categorical", "bytes", [f"T{i // 2}" for i in range(50)]) is None
    assert checks.id_like("k", "categorical", "bytes", [f"T{i}" for i in range(5)]) is None


def test_the_run_summary_shows_the_trainers_warnings_in_full() -> None:
    from kubetfx.local.runner import TaskResult
    from kubetfx.local.summary import _note

    warned = "dropped 9 row(s) without a label; probable label leak: 'Tip amount ($)'"
    task = TaskResult(
        "trainer", "SUCCEEDED", params={"val_accuracy": 0.97, "device": "CPU", "warnings": warned}
    )
    assert _note(task) == f"val_accuracy=0.97, device=CPU, warnings: {warned}"
    quiet = TaskResult("trainer", "SUCCEEDED", params={"val_accuracy": 0.97, "device": "CPU", "warnings": ""})
    assert _note(quiet) == "val_accuracy=0.97, device=CPU"


def test_missing_labels_in_parquet_are_named_by_row_index(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = ["a" if i % 3 else "b" for i in range(90)]
    labels[4] = labels[61] = None
    pq.write_table(
        pa.table({"Weight (kg)": [float(i % 11) for i in range(90)], "Class/Type": labels}),
        tmp_path / "records.parquet",
    )
    prepared = _prepare(str(tmp_path / "records.parquet"), tmp_path, "Class/Type")
    with pytest.raises(InputDataError, match=r"records\.parquet row indices 4, 61;"):
        _train(prepared, tmp_path / "m", "Class/Type")


def test_column_names_that_are_keras_layer_names_build_a_model() -> None:
    from kubetfx.components.trainer.model import Feature, FeatureSpec, HyperParameters, build_model

    # "x embedding" once collided with the embedding layer of "x"; "dense" and
    # "probability" are names Keras gives its own layers.
    features = [Feature(name=n, kind="numeric") for n in ("dense", "probability", "x embedding", "hidden 1")]
    features.append(Feature(name="x", kind="categorical", vocabulary=[str(i) for i in range(40)]))
    for feature, safe in zip(features, trainer.safe_names([f.name for f in features]).values(), strict=True):
        feature.input_name = safe
    spec = FeatureSpec(features=features, label="y", classes=["a", "b"])
    model = build_model(spec, HyperParameters(dropout=0.1))
    assert sorted(t.name for t in model.inputs) == sorted(f.key for f in features)
    assert "probability" not in {f.key for f in features}


def test_first_values_reads_flat_and_list_columns_alike() -> None:
    m = checks.MISSING
    assert checks.first_values([1.5, None, float("nan"), 2.0]) == [1.5, m, m, 2.0]
    assert checks.first_values([None, "a", "b"]) == [m, "a", "b"]
    assert checks.first_values([[1.5], [], None, [2.0, 3.0]]) == [1.5, m, m, 2.0]
    assert checks.first_values([[b"a"], [b"b"], []]) == ["a", "b", m]
