"""serving_drift on real TFDV: requests drawn from the penguins eval split show no drift in
either log format; body_mass_g shifted by +2500 g is flagged by name with a PSI over 0.2;
PSI and L-infinity equal an independent computation; a window too small raises no alarm;
unknown and missing features are reported; the served model's training data is found
through a real SQLite ML Metadata store; the artifact's metadata maps to Prometheus samples.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from kubetfx.components.serving_drift import distances, executor, logs, report_html

from kubetfx.artifacts.kinds import BLESSING, EVALUATION, PUSHED_MODEL, TYPE_KEY
from kubetfx.lineage import record
from kubetfx.lineage.record import ArtifactRecord, Identity
from kubetfx.lineage.serving import served_training
from kubetfx.lineage.store import connect
from kubetfx.metrics import Samples, artifact_samples

from .conftest import as_row, eval_requests, shift_mass, write_kserve, write_tfserving

# The served model's predictions on its evaluation split (a confusion matrix's column sums).
EVAL_PREDICTED = {"Adelie": 48.0, "Chinstrap": 22.0, "Gentoo": 41.0}


@pytest.fixture(scope="module")
def training(penguins: dict[str, str]) -> executor.Training:
    return executor.Training(
        statistics_dir=penguins["statistics"],
        schema_dir=penguins["schema"],
        examples_dir=penguins["examples"],
        predicted=dict(EVAL_PREDICTED),
        description="penguins, version 1",
    )


@pytest.fixture(scope="module")
def unchanged(penguins: dict[str, str]) -> list[tuple[bytes, str]]:
    return eval_requests(penguins["examples"])


@pytest.fixture(scope="module")
def shifted(penguins: dict[str, str]) -> list[tuple[bytes, str]]:
    return eval_requests(penguins["examples"], shift_mass)


# ---------------------------------------------------------------------- PSI, by hand and by numpy


def test_psi_equals_a_hand_computed_case() -> None:
    # e = (.5, .3, .2), a = (.3, .3, .4):
    # (.3-.5) ln(.3/.5) + 0 + (.4-.2) ln(.4/.2) = 0.2 * 0.5108256 + 0.2 * 0.6931472 = 0.2407946
    assert distances.psi([50, 30, 20], [30, 30, 40]) == pytest.approx(0.2407945609, abs=1e-6)
    # An empty training bin counts as a share of 1e-4:
    # (.5-1) ln(.5/1) + (.5-1e-4) ln(.5/1e-4) = 0.3465736 + 0.4999 * 8.5171932 = 4.6043185
    assert distances.psi([10, 0], [5, 5]) == pytest.approx(4.6043184667, abs=1e-6)
    assert distances.psi([1, 2], [1, 2]) == 0.0
    assert math.isnan(distances.psi([1, 2], [0, 0]))
    # Categories: a value training never saw gets the extra bin.
    assert distances.categorical_psi({"a": 50, "b": 30, "c": 20}, ["a"] * 3 + ["b"] * 3 + ["c"] * 4) == (
        pytest.approx(0.2407945609, abs=1e-6)
    )
    assert distances.categorical_psi({"a": 10}, ["a"] * 5 + ["z"] * 5) == pytest.approx(
        4.6043184667, abs=1e-6
    )


def _numpy_psi(training: np.ndarray, serving: np.ndarray, eps: float = 1e-4) -> float:
    """PSI written again from its definition: decile edges, np.digitize, shares floored at eps
    (missing values, NaN, left out)."""
    training, serving = training[~np.isnan(training)], serving[~np.isnan(serving)]
    edges = np.unique(np.percentile(training, [10, 20, 30, 40, 50, 60, 70, 80, 90]))
    expected = np.bincount(np.digitize(training, edges), minlength=len(edges) + 1) / len(training)
    actual = np.bincount(np.digitize(serving, edges), minlength=len(edges) + 1) / len(serving)
    expected, actual = np.where(expected == 0, eps, expected), np.where(actual == 0, eps, actual)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_numeric_psi_equals_a_numpy_reimplementation() -> None:
    rng = np.random.default_rng(7)
    training = rng.normal(4200, 800, 2000).round()
    for serving in (rng.normal(4200, 800, 500).round(), rng.normal(5000, 600, 300).round(), training[:40]):
        assert distances.numeric_psi(training, serving) == pytest.approx(
            _numpy_psi(training, serving), abs=1e-6
        )


def test_psi_from_a_quantiles_histogram_counts_bins_as_the_values_do() -> None:
    # Ten buckets of ten values each, by tens: the same bins as the values themselves give.
    values = np.arange(100, dtype=float) + 0.5
    buckets = [(float(lo), float(lo + 10), 10.0) for lo in range(0, 100, 10)]
    serving = np.arange(50, 150, dtype=float)
    cuts = [10.0 * i for i in range(1, 10)]
    exact = distances.psi(distances.bin_counts(values, cuts), distances.bin_counts(serving, cuts))
    assert distances.histogram_psi(buckets, serving) == pytest.approx(exact, abs=1e-9)


def _numeric_statistics(counts: list[int]) -> object:
    """Statistics of one FLOAT feature ``x`` with a standard histogram of unit buckets."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = statistics.datasets.add()
    dataset.num_examples = sum(counts)
    feature = dataset.features.add()
    feature.path.step.append("x")
    feature.type = statistics_pb2.FeatureNameStatistics.FLOAT
    common = feature.num_stats.common_stats
    common.num_non_missing = common.tot_num_values = sum(counts)
    common.min_num_values = common.max_num_values = common.avg_num_values = 1
    feature.num_stats.min, feature.num_stats.max = 0, len(counts)
    histogram = feature.num_stats.histograms.add()
    histogram.type = histogram.STANDARD
    for i, count in enumerate(counts):
        bucket = histogram.buckets.add()
        bucket.low_value, bucket.high_value, bucket.sample_count = i, i + 1, count
    return statistics


def test_jensen_shannon_equals_scipys_on_the_same_buckets() -> None:
    from kubetfx.components.serving_drift import tfdv_stats
    from scipy.spatial.distance import jensenshannon
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    schema.feature.add(name="x", type=schema_pb2.FLOAT)
    training, serving = [50, 30, 20], [20, 30, 50]
    found = tfdv_stats.distances_from(
        _numeric_statistics(serving), _numeric_statistics(training), schema, ["x"]
    )
    p, q = np.array(training) / 100, np.array(serving) / 100
    # TFDV's divergence (base 2) is the square of scipy's Jensen-Shannon distance.
    assert found == {"x": {"jensen_shannon": pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-6)}}


def test_noise_floors_are_what_chance_reaches() -> None:
    # chi-square 0.999 quantile, 9 degrees of freedom: 27.877 (tables); Wilson-Hilferty within 1%.
    assert distances.chi2_quantile(9) == pytest.approx(27.877, rel=0.01)
    assert distances.psi_noise_floor(111, 233) == pytest.approx(27.877 * (1 / 111 + 1 / 233), rel=0.01)
    assert distances.psi_noise_floor(100_000, 100_000) < 0.01
    # Monte Carlo: PSI of two samples of one distribution stays under the floor (1 in 1000).
    rng = np.random.default_rng(3)
    training = rng.normal(size=233)
    floor = distances.psi_noise_floor(111, 233)
    assert max(distances.numeric_psi(training, rng.normal(size=111)) for _ in range(300)) < floor


# ---------------------------------------------------------------------- logs


def test_every_request_form_reads_as_the_same_rows(tmp_path: Path, unchanged: list) -> None:
    sample = unchanged[:7]
    forms = {}
    for form in ("b64", "examples", "rows", "v2"):
        path = write_kserve(tmp_path / f"{form}.jsonl", sample, form=form, batch=3)
        forms[form] = logs.read_requests(str(path))
    forms["tfserving"] = logs.read_requests(str(write_tfserving(tmp_path / "log.tfrecord", sample, batch=3)))
    expected = [logs.example_row(s) for s, _ in sample]
    for form, requests in forms.items():
        assert len(requests) == 3, form
        assert [r for q in requests for r in q.rows] == expected, form
        assert [p for q in requests for p in q.predictions] == [c for _, c in sample], form
    assert [q.id for q in forms["b64"]] == ["req-00000", "req-00001", "req-00002"]
    # auto: by the content when the name does not say.
    (tmp_path / "events").write_bytes((tmp_path / "b64.jsonl").read_bytes())
    (tmp_path / "records").write_bytes((tmp_path / "log.tfrecord").read_bytes())
    assert [logs.detect_format(str(tmp_path / n)) for n in ("events", "records")] == ["kserve", "tfserving"]
    # A missing value (null in a row) is a feature present without values, as in the Example.
    with_gap = next((s, c) for s, c in unchanged if not logs.example_row(s)["sex"])
    assert as_row(with_gap[0])["sex"] is None
    assert logs.request_rows({"instances": [as_row(with_gap[0])]})[0]["sex"] == []


def test_class_ids_are_named_through_the_labels_domain_or_not_compared(
    tmp_path: Path, training: executor.Training, unchanged: list
) -> None:
    names = ["Adelie", "Chinstrap", "Gentoo"]  # the curated schema's species domain
    assert logs.response_classes({"predictions": [{"class_ids": [2]}, {"class_ids": [0]}]}, 2, names) == [
        "Gentoo",
        "Adelie",
    ]
    assert logs.response_classes({"predictions": [{"class_ids": [2]}]}, 1) == ["2"]
    # Ids nobody could name are not compared with the evaluation's classes (no false drift).
    path = tmp_path / "ids.jsonl"
    write_kserve(path, unchanged, form="v2")
    text = path.read_text().replace('"name": "classes"', '"name": "class_ids"')
    for species, n in (("Adelie", 0), ("Chinstrap", 1), ("Gentoo", 2)):
        text = text.replace(f'"{species}"', str(n))
    path.write_text(text)
    no_schema = executor.Training(training.statistics_dir, "", training.examples_dir, dict(EVAL_PREDICTED))
    result = executor.run(str(path), no_schema, str(tmp_path / "out"))
    assert set(result.predicted) == {"0", "1", "2"} and result.prediction == {} and not result.drifted
    named = executor.run(str(path), training, str(tmp_path / "out2"))
    assert set(named.predicted) == set(names) and named.prediction and not named.drifted


def test_windows_take_the_newest_requests(tmp_path: Path, unchanged: list) -> None:
    requests = logs.read_requests(str(write_kserve(tmp_path / "a.jsonl", unchanged[:50])))
    assert [r.id for r in logs.select_window(requests, "5")] == [f"req-{n:05d}" for n in range(45, 50)]
    # One request a minute: the 10 minutes before the newest hold 11 requests.
    assert len(logs.select_window(requests, "10m")) == 11
    assert len(logs.select_window(requests, "")) == 50
    with pytest.raises(Exception, match="window 'soon'"):
        logs.select_window(requests, "soon")


# ---------------------------------------------------------------------- drift


def test_requests_from_the_eval_split_show_no_drift_in_either_format(
    tmp_path: Path, training: executor.Training, unchanged: list
) -> None:
    kserve = executor.run(
        str(write_kserve(tmp_path / "kserve.jsonl", unchanged, batch=2)), training, str(tmp_path / "k")
    )
    tfserving = executor.run(
        str(write_tfserving(tmp_path / "tfs.tfrecord", unchanged)), training, str(tmp_path / "t")
    )
    for result in (kserve, tfserving):
        assert result.rows == len(unchanged) == 111
        assert not result.drifted, result.reason
        assert result.reason.startswith("no drift: 7 features"), result.reason
        assert result.drifted_features == [] and not result.prediction_drifted
        assert result.anomalies == {}, result.anomalies  # a false anomaly is a bug
        assert result.unknown_features == [] and result.missing_features == []
        assert set(result.distances) == {
            "island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"
        }  # fmt: skip
    assert kserve.distances == tfserving.distances
    assert kserve.requests == 56 and tfserving.requests == 111


def test_a_shifted_feature_is_flagged_by_name_with_psi_over_0_2(
    tmp_path: Path, training: executor.Training, penguins: dict[str, str], shifted: list
) -> None:
    path = write_tfserving(tmp_path / "shifted.tfrecord", shifted)
    result = executor.run(str(path), training, str(tmp_path / "out"), model_name="penguins")
    assert result.drifted and result.drifted_features == ["body_mass_g"]
    assert result.distances["body_mass_g"]["psi"] > 0.2
    assert result.distances["body_mass_g"]["jensen_shannon"] > 0.3
    assert result.reason.startswith("drifted: body_mass_g (")
    assert result.anomalies == {}  # 2500 g more is still inside the schema's range

    # PSI equals the numpy reimplementation on the training column and the shifted requests.
    train = pq.read_table(Path(penguins["examples"], "Split-train/data.parquet")).column("body_mass_g")
    served = np.array([v for s, _ in shifted for v in logs.example_row(s)["body_mass_g"]], dtype=float)
    expected_psi = _numpy_psi(np.array(train.to_pylist(), dtype=float), served)
    assert result.distances["body_mass_g"]["psi"] == pytest.approx(expected_psi, abs=1e-6)

    # TFDV's L-infinity of island equals the largest gap of the category shares.
    train_island = Counter(
        pq.read_table(Path(penguins["examples"], "Split-train/data.parquet")).column("island").to_pylist()
    )
    served_island = Counter(logs.example_row(s)["island"][0] for s, _ in shifted)
    gap = max(
        abs(train_island[k] / sum(train_island.values()) - served_island[k] / len(shifted))
        for k in set(train_island) | set(served_island)
    )
    assert result.distances["island"]["l_infinity"] == pytest.approx(gap, abs=1e-6)
    assert distances.linf(train_island, served_island) == pytest.approx(gap, abs=1e-12)

    # The artifact: file, metadata, report and Prometheus samples say the same.
    metadata = result.metadata()
    assert metadata[TYPE_KEY] == "kubetfx.ServingDrift" and metadata["drifted"] is True
    assert Path(tmp_path / "out" / executor.RESULT_FILE).exists()
    page = report_html.render(result)
    assert "body_mass_g" in page and "over threshold" in page
    samples = Samples()
    artifact_samples(samples, metadata)
    psi = samples.values["kubetfx_serving_drift_distance"]
    assert psi[(("feature", "body_mass_g"), ("measure", "psi"))] == pytest.approx(
        result.distances["body_mass_g"]["psi"], abs=1e-6
    )
    # The predictions: L-infinity of the class shares, by hand; their own thresholds.
    labels = Counter(c for _, c in shifted)
    shares = max(
        abs(labels[c] / len(shifted) - n / sum(EVAL_PREDICTED.values())) for c, n in EVAL_PREDICTED.items()
    )
    assert result.prediction["prediction_l_infinity"] == pytest.approx(shares, abs=1e-6)
    assert psi[(("feature", "__prediction__"), ("measure", "prediction_l_infinity"))] == pytest.approx(
        shares, abs=1e-6
    )
    thresholds = samples.values["kubetfx_serving_drift_threshold"]
    assert thresholds[(("measure", "psi"),)] == metadata["drift_thresholds"]["psi"] >= 0.2
    assert thresholds[(("measure", "prediction_psi"),)] >= thresholds[(("measure", "psi"),)]  # 111 < 233
    assert samples.values["kubetfx_serving_drifted_features"] == {(): 1.0}
    assert samples.values["kubetfx_serving_requests"] == {(): 111.0}
    assert samples.values["kubetfx_serving_anomalies"] == {(): 0.0}


def test_too_few_requests_say_so_without_an_alarm(
    tmp_path: Path, training: executor.Training, shifted: list
) -> None:
    path = write_kserve(tmp_path / "few.jsonl", shifted, form="rows")
    result = executor.run(str(path), training, str(tmp_path / "out"), window="20")
    assert result.rows == 20 and result.too_few and not result.drifted
    assert result.reason.startswith("too few requests: 20 in the window, at least 30")
    assert result.distances == {} and result.drifted_features == []
    samples = Samples()
    artifact_samples(samples, result.metadata())
    assert "kubetfx_serving_drift_distance" not in samples.values  # nothing an alert could fire on
    assert samples.values["kubetfx_serving_requests"] == {(): 20.0}


def test_unknown_and_missing_features_are_reported_not_crashed_on(
    tmp_path: Path, training: executor.Training, unchanged: list
) -> None:
    rows = []
    for serialized, _ in unchanged:
        row = as_row(serialized)
        del row["year"]
        row["colour"] = "grey"
        rows.append({"instances": [row]})
    path = tmp_path / "odd.jsonl"
    import json

    path.write_text(
        "".join(
            json.dumps({"specversion": "1.0", "id": str(i), "type": logs.REQUEST_EVENT, "data": body}) + "\n"
            for i, body in enumerate(rows)
        )
    )
    result = executor.run(str(path), training, str(tmp_path / "out"))
    assert result.unknown_features == ["colour"] and result.missing_features == ["year"]
    assert "year" not in result.distances and "colour" not in result.distances
    assert set(result.anomalies) == {"colour", "year"}, result.anomalies  # both true anomalies
    assert not result.drifted and result.predicted == {}  # no responses logged


# ---------------------------------------------------------------------- lineage


def _task(store, run: str, task: str, inputs: dict, outputs: dict) -> dict[str, list[int]]:
    identity = Identity(pipeline_name="ct", run_id=run, task_name=task)
    execution = record.start_execution(store, identity, params={}, inputs=inputs)
    return record.finish_execution(store, identity, execution, outputs=outputs, output_params={})


def test_the_served_models_training_data_is_found_through_lineage(
    tmp_path: Path, penguins: dict[str, str], unchanged: list, shifted: list, cli
) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    out = str(tmp_path / "out")
    logs_uri = str(write_kserve(tmp_path / "logs.jsonl", unchanged))
    assert executor.check("", "penguins", out, store=store).reason.startswith("off:")
    assert executor.check(logs_uri, "penguins", out, store=None).reason.startswith(
        "not measured: lineage is off"
    )
    nothing = executor.check(logs_uri, "penguins", out, store=store)
    assert not nothing.drifted and "no model is served under the name 'penguins'" in nothing.reason

    def art(
        key: str, uri: str, title: str = "system.Artifact", meta: dict | None = None, id_: int | None = None
    ):
        return ArtifactRecord(key, uri, title, dict(meta or {}), id=id_)

    ex = _task(
        store,
        "r1",
        "example-gen",
        {},
        {"examples": [art("examples", penguins["examples"], "system.Dataset")]},
    )
    ex_in = art("examples", penguins["examples"], "system.Dataset", id_=ex["examples"][0])
    stats_meta = {TYPE_KEY: "kubetfx.ExampleStatistics"}
    st = _task(store, "r1", "statistics-gen", {"examples": [ex_in]}, {
        "statistics": [art("statistics", penguins["statistics"], meta=stats_meta)]
    })  # fmt: skip
    sc = _task(
        store,
        "r1",
        "schema-gen",
        {},
        {"schema": [art("schema", penguins["schema"], meta={TYPE_KEY: "kubetfx.Schema"})]},
    )
    model_dir = tmp_path / "model"
    (model_dir / "Format-Serving").mkdir(parents=True)
    (model_dir / "Format-Serving" / "saved_model.pb").write_bytes(b"stand-in")
    inputs = {
        "examples": [ex_in],
        "schema": [art("schema", penguins["schema"], id_=sc["schema"][0])],
        "statistics": [art("statistics", penguins["statistics"], id_=st["statistics"][0])],
    }
    tr = _task(store, "r1", "trainer", inputs, {"model": [art("model", str(model_dir), "system.Model")]})
    model_in = art("model", str(model_dir), "system.Model", id_=tr["model"][0])
    names = sorted(EVAL_PREDICTED)
    confusion = {  # rows: actual; columns: predicted, whose sums are EVAL_PREDICTED
        "annotationSpecs": [{"displayName": n} for n in names],
        "rows": [{"row": [46, 2, 0]}, {"row": [2, 20, 0]}, {"row": [0, 0, 41]}],
    }
    (tmp_path / "ev").mkdir()
    blessed = {"blessed": 1}
    _task(store, "r1", "evaluator", {"examples": [ex_in], "model": [model_in]}, {
        "evaluation": [art("evaluation", str(tmp_path / "ev"), meta={TYPE_KEY: EVALUATION, **blessed})],
        "blessing": [art("blessing", str(tmp_path / "bl"), meta={TYPE_KEY: BLESSING, **blessed})],
        "classification_metrics": [
            art("cm", str(tmp_path / "cm"), "system.ClassificationMetrics", {"confusionMatrix": confusion})
        ],
    })  # fmt: skip
    pushed = {
        TYPE_KEY: PUSHED_MODEL,
        "pushed": 1,
        "model_name": "penguins",
        "version": 1,
        "destination": "/srv",
    }
    _task(
        store,
        "r1",
        "pusher",
        {"model": [model_in]},
        {"pushed_model": [art("pushed_model", "/srv/penguins/1", meta=pushed)]},
    )

    served = served_training(store, "penguins")
    assert served is not None and served.model_uri == str(model_dir)
    assert (served.examples_uri, served.schema_uri, served.statistics_uri) == (
        penguins["examples"], penguins["schema"], penguins["statistics"]
    )  # fmt: skip
    assert served.predicted == EVAL_PREDICTED and served.evaluation.get("blessed") == 1
    assert served_training(store, "other") is None

    # A Trainer that took no statistics: those an execution computed from its examples.
    inputs = {"examples": [ex_in], "schema": inputs["schema"]}
    tr2 = _task(
        store, "r2", "trainer", inputs, {"model": [art("model", str(tmp_path / "m2"), "system.Model")]}
    )
    model2 = art("model", str(tmp_path / "m2"), "system.Model", id_=tr2["model"][0])
    pushed2 = {**pushed, "model_name": "penguins-b"}
    _task(store, "r2", "pusher", {"model": [model2]}, {"pushed_model": [art("p", "/srv/b/1", meta=pushed2)]})
    other = served_training(store, "penguins-b")
    assert other is not None and other.statistics_uri == penguins["statistics"]
    assert other.predicted == {} and other.evaluation_uri == ""  # never evaluated: no predictions to compare

    calm = executor.check(logs_uri, "penguins", out, store=store)
    assert not calm.drifted and calm.reason.startswith("no drift"), calm.reason
    assert calm.expected_predicted == EVAL_PREDICTED and calm.prediction["prediction_l_infinity"] < 0.25
    assert "served: version 1" in calm.baseline
    # Requests logged without their responses: the predictions are not compared (no alarm
    # from an empty distribution), and the report says why instead of showing zero shares.
    silent = executor.check(
        str(write_kserve(tmp_path / "silent.jsonl", unchanged, responses=False)), "penguins", out, store=store
    )
    assert not silent.drifted and silent.prediction == {}, silent.prediction
    assert "hold no responses" in report_html.render(silent)
    moved_logs = str(write_kserve(tmp_path / "moved.jsonl", shifted))
    moved = executor.check(moved_logs, "penguins", out, store=store)
    assert moved.drifted and moved.drifted_features == ["body_mass_g"]

    # The operator's command: a summary (or JSON), a report, exit 1 on drift when asked.
    text, status = executor.command(moved_logs, "penguins", store=store, output_dir=out, fail_on_drift=True)
    assert status == 1 and text.splitlines()[0] == moved.reason
    assert (
        [line for line in text.splitlines() if line.endswith(" *")]
        == [line for line in text.splitlines() if line.startswith("body_mass_g ") and line.endswith(" *")]
        != []
    )
    assert Path(out, "report.html").exists()
    text, status = executor.command(logs_uri, "penguins", store=store, output_dir=out, as_json=True)
    assert status == 0 and '"drifted": false' in text
    # The same through the installed CLI, as an operator types it.
    metadata = f"sqlite:///{tmp_path}/mlmd.sqlite"
    shell = cli("serving-drift", moved_logs, "--model", "penguins", "--metadata", metadata,
                "--out", str(tmp_path / "cli"), "--fail-on-drift")  # fmt: skip
    assert shell.returncode == 1, shell.stdout + shell.stderr
    assert shell.stdout.splitlines()[0] == moved.reason and "body_mass_g" in shell.stdout
    assert (tmp_path / "cli" / "report.html").exists()
    missing = cli(
        "serving-drift", moved_logs, "--model", "penguins", "--metadata", f"sqlite:///{tmp_path}/nope.sqlite"
    )
    assert missing.returncode == 2 and "no metadata store" in missing.stderr, missing.stderr
