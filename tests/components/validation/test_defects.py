"""One test per injected defect, each detected and named, on real TFDV over real files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kfp import dsl
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_validator import executor as validator
from kubetfx.components.example_validator import outputs
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics as statistics_artifact
from kubetfx.fingerprint import local_path
from kubetfx.lineage.query import StatisticsBaseline

CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)


def _stats(tmp_path: Path, frame: pd.DataFrame, name: str) -> str:
    csv = tmp_path / f"{name}.csv"
    frame.to_csv(csv, index=False)
    example_gen.run(str(csv), str(tmp_path / f"{name}-examples"))
    statistics_gen.run(str(tmp_path / f"{name}-examples"), str(tmp_path / f"{name}-stats"))
    return str(tmp_path / f"{name}-stats")


def _validate(tmp_path: Path, frame: pd.DataFrame, **kwargs) -> validator.ValidationResult:
    stats = _stats(tmp_path, frame, "current")
    schema_gen.run(stats, str(tmp_path / "schema"), schema_file=CURATED, label_key="species")
    return validator.run(stats, str(tmp_path / "schema"), str(tmp_path / "anomalies"), **kwargs)


def _only(result: validator.ValidationResult, feature: str) -> str:
    problems = result.problems()
    assert problems, "the defect was not detected"
    assert all(f"feature {feature!r}" in p for p in problems), problems
    return "\n".join(problems)


def test_clean_data_passes_with_zero_anomalies(tmp_path: Path, penguins) -> None:
    result = _validate(tmp_path, penguins)
    assert result.problems() == [] and result.anomaly_count == 0
    assert set(result.anomalies) == {"train", "eval"}
    assert (tmp_path / "anomalies/Split-eval/SchemaDiff.pb").stat().st_size >= 0


def test_new_category(tmp_path: Path, penguins) -> None:
    frame = penguins.copy()
    frame.loc[frame.index[::7], "island"] = "Atlantis"
    text = _only(_validate(tmp_path, frame), "island")
    assert "Atlantis" in text and "Unexpected string values" in text


def test_missing_column(tmp_path: Path, penguins) -> None:
    text = _only(_validate(tmp_path, penguins.drop(columns=["bill_depth_mm"])), "bill_depth_mm")
    assert "Column dropped" in text


def test_type_change_number_to_text(tmp_path: Path, penguins) -> None:
    frame = penguins.copy()
    frame["body_mass_g"] = frame["body_mass_g"].astype(str) + " g"
    text = _only(_validate(tmp_path, frame), "body_mass_g")
    assert "BYTES" in text or "type" in text.lower()


def test_value_out_of_range(tmp_path: Path, penguins) -> None:
    frame = penguins.copy()
    frame.loc[frame.index[:40], "flipper_length_mm"] = 999
    text = _only(_validate(tmp_path, frame), "flipper_length_mm")
    assert "Out-of-range" in text


def test_distribution_shift_between_spans_is_drift(tmp_path: Path, penguins) -> None:
    previous = _stats(tmp_path, penguins, "span1")
    shifted = penguins.copy()
    mass = pd.to_numeric(shifted["body_mass_g"], errors="coerce")
    shifted["body_mass_g"] = (mass + 2500).astype("Int64").astype(str).replace("<NA>", "NA")
    result = _validate(tmp_path, shifted, baseline_statistics_dir=previous, baseline_span=1, span=2)
    assert result.drifted == ["body_mass_g"]
    assert result.drift["body_mass_g"] > 0.3
    # Every feature's distance is measured, drifted or not (a time series needs them all).
    assert set(result.drift) == set(penguins.columns)
    assert result.drift["island"] < 0.05
    text = _only(result, "body_mass_g")
    assert "Jensen-Shannon" in text


def test_training_serving_skew(tmp_path: Path, penguins) -> None:
    serving = penguins.drop(columns=["species"]).copy()
    serving["island"] = "Biscoe"  # serving traffic from one island only
    sample = tmp_path / "serving.csv"
    serving.to_csv(sample, index=False)
    result = _validate(tmp_path, penguins, serving_data_uri=str(sample))
    assert result.skewed == ["island"], result.skew
    text = _only(result, "island")
    assert "between training and serving" in text
    # The sample itself is fine in the SERVING environment (no label there is expected).
    assert dict(result.anomalies["serving"].anomaly_info) == {}


def test_label_present_at_serving_is_an_anomaly(tmp_path: Path, penguins) -> None:
    sample = tmp_path / "serving.csv"
    penguins.to_csv(sample, index=False)  # still carries the label
    result = _validate(tmp_path, penguins, serving_data_uri=str(sample))
    assert any("serving: feature 'species'" in p for p in result.problems())


def test_failure_message_names_every_feature(tmp_path: Path, penguins) -> None:
    frame = penguins.drop(columns=["year"]).copy()
    frame.loc[frame.index[::5], "sex"] = "unknown"
    message = validator.failure_message(_validate(tmp_path, frame))
    assert "feature 'year'" in message and "feature 'sex'" in message
    assert "fail_on_anomalies=false" in message


def test_inferred_schema_and_environments(tmp_path: Path, penguins) -> None:
    stats = _stats(tmp_path, penguins, "s")
    result = schema_gen.run(stats, str(tmp_path / "inferred"), label_key="species")
    assert result.source == "inferred from splits train, eval"
    schema = schema_artifact.load(str(tmp_path / "inferred"))
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    label = next(f for f in schema.feature if f.name == "species")
    assert list(label.not_in_environment) == ["SERVING"]
    with pytest.raises(Exception, match="label_key 'kind' is not a feature"):
        schema_gen.run(stats, str(tmp_path / "x"), label_key="kind")
    broken = tmp_path / "broken.pbtxt"
    broken.write_text('feature { name: "a" type: INT\n')
    with pytest.raises(Exception, match=r"broken.pbtxt:\d+:\d+"):
        schema_gen.run(stats, str(tmp_path / "y"), schema_file=str(broken))


def test_columnar_tfrecord_and_beam_paths_agree(tmp_path: Path, penguins) -> None:
    import shutil

    csv = tmp_path / "p.csv"
    penguins.to_csv(csv, index=False)
    example_gen.run(str(csv), str(tmp_path / "ex"))
    shutil.copytree(tmp_path / "ex", tmp_path / "ex-no-copy")
    for copy in (tmp_path / "ex-no-copy").glob("Split-*/data.parquet"):
        copy.unlink()
    columnar = statistics_gen.run(str(tmp_path / "ex"), str(tmp_path / "col"))
    decoded = statistics_gen.run(str(tmp_path / "ex-no-copy"), str(tmp_path / "mem"))
    beam = statistics_gen.run(
        str(tmp_path / "ex"),
        str(tmp_path / "beam"),
        in_memory_max_mb=0,
        beam_pipeline_args=["--runner=DirectRunner", "--direct_running_mode=in_memory"],
    )
    assert columnar.path["train"] == "in-memory (columnar copy)"
    assert decoded.path["train"] == "in-memory" and beam.path["train"] == "beam"
    assert columnar.num_examples == decoded.num_examples == beam.num_examples
    reference = statistics_artifact.load(str(tmp_path / "col"), "train").datasets[0]
    for other_dir in ("mem", "beam"):
        other = statistics_artifact.load(str(tmp_path / other_dir), "train").datasets[0]
        by_name = {f.path.step[0]: f for f in other.features}
        for feature in reference.features:
            twin = by_name[feature.path.step[0]]
            assert feature.type == twin.type, feature.path
            if feature.HasField("num_stats"):
                assert feature.num_stats.mean == pytest.approx(twin.num_stats.mean, rel=1e-6)
                assert feature.num_stats.std_dev == pytest.approx(twin.num_stats.std_dev, rel=1e-6)
                assert feature.num_stats.num_zeros == twin.num_stats.num_zeros
                assert (
                    feature.num_stats.common_stats.tot_num_values
                    == twin.num_stats.common_stats.tot_num_values
                )
            else:
                assert feature.string_stats.unique == twin.string_stats.unique
                assert [v.value for v in feature.string_stats.top_values] == [
                    v.value for v in twin.string_stats.top_values
                ]


def test_statistics_report_counts_empty_cells_as_missing(tmp_path: Path, penguins) -> None:
    from kubetfx.reports import statistics_html

    stats = _stats(tmp_path, penguins, "r")
    page = statistics_html({s: statistics_artifact.load(stats, s) for s in ("train", "eval")})
    import re

    present = [int(n) for n in re.findall(r"<td>sex</td><td class='num'>(\d+)</td>", page)]
    assert sum(present) == 344 - 11  # 11 penguins have no sex recorded
    assert "<script" not in page


def test_what_the_component_hands_kfp(tmp_path: Path, penguins) -> None:
    frame = penguins.copy()
    frame.loc[frame.index[::7], "island"] = "Atlantis"
    result = _validate(tmp_path, frame)
    made = {n: dsl.Artifact(uri=str(tmp_path / "out" / n), metadata={}) for n in ("anomalies", "report")}
    metrics = dsl.Metrics(uri=str(tmp_path / "out" / "metrics"), metadata={})
    (tmp_path / "out").mkdir()
    count, valid = outputs.publish(result, **made, metrics=metrics, title="Data validation of penguins")
    assert (count, valid) == (result.anomaly_count, False) and count >= 1
    assert made["anomalies"].metadata["kubetfx_type"] == "kubetfx.ExampleAnomalies"
    assert "Atlantis" in Path(made["report"].path).read_text()
    assert metrics.metadata["anomaly_count"] == count and "drifted_features" in metrics.metadata
    assert outputs.baseline_arguments(None) == {}
    baseline = StatisticsBaseline(
        uri=str(tmp_path / "current-stats"), span=3, run_id="run-1", source="s3://b/data", artifact_id=7
    )
    assert outputs.baseline_arguments(baseline) == {
        "baseline_statistics_dir": str(tmp_path / "current-stats"),
        "baseline_span": 3,
        "baseline_run": "run-1",
        "baseline_uri": str(tmp_path / "current-stats"),
        "source": "s3://b/data",
    }
