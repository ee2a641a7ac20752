"""SchemaGen's inference on real data: every split, exclude_splits, determinism, report."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_validator import executor as validator
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts import layout
from kubetfx.artifacts import schema as schema_artifact
from kubetfx.errors import ConfigError
from kubetfx.fingerprint import local_path


@pytest.fixture(scope="module")
def airports(tmp_path_factory) -> Path:
    """Statistics of the airports table (its rare countries are what this module needs)."""
    spec = importlib.util.find_spec("vega_datasets")
    assert spec is not None, "vega_datasets (kubetfx's dev extra) ships the airports table"
    source = Path(next(iter(spec.submodule_search_locations)), "_data", "airports.csv")
    root = tmp_path_factory.mktemp("airports")
    example_gen.run(str(source), str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    return root


def _split_values(root: Path, split: str, column: str) -> set[str]:
    table = pq.read_table(root / "examples" / f"Split-{split}" / "data.parquet", columns=[column])
    return {v for v in table.column(column).to_pylist() if v is not None}


def test_rare_values_only_eval_holds_are_in_the_schema(airports: Path, tmp_path: Path) -> None:
    only_in_eval = {
        column: _split_values(airports, "eval", column) - _split_values(airports, "train", column)
        for column in ("country", "state")  # the closed categories
    }
    assert only_in_eval["country"], "the hash split put every rare country into train"
    stats = str(airports / "statistics")
    schema_gen.run(stats, str(tmp_path / "all"))
    assert validator.run(stats, str(tmp_path / "all"), str(tmp_path / "a1")).problems() == []
    schema = schema_artifact.load(str(tmp_path / "all"))
    for column, values in only_in_eval.items():
        domain = next(d for d in schema.string_domain if d.name == column)
        assert values <= set(domain.value), column
    # Inferred from train alone (the old behaviour, and exclude_splits=["eval"] now), the
    # same data stops on its eval split, on exactly the features with eval-only values.
    result = schema_gen.run(stats, str(tmp_path / "train-only"), exclude_splits=["eval"])
    assert result.splits == ["train"] and result.excluded_splits == ["eval"]
    found = validator.run(stats, str(tmp_path / "train-only"), str(tmp_path / "a2"))
    assert set(found.anomalies["eval"].anomaly_info) == {c for c, v in only_in_eval.items() if v}
    assert all(p.startswith("eval: ") and "Unexpected string values" in p for p in found.problems())
    assert dict(found.anomalies["train"].anomaly_info) == {}


def test_same_statistics_give_the_same_schema_bytes(airports: Path, tmp_path: Path) -> None:
    stats = str(airports / "statistics")
    schema_gen.run(stats, str(tmp_path / "one"))
    schema_gen.run(stats, str(tmp_path / "two"))
    one = (tmp_path / "one" / layout.SCHEMA_FILE).read_bytes()
    assert one == (tmp_path / "two" / layout.SCHEMA_FILE).read_bytes()


def test_exclude_splits_names_are_checked(airports: Path, tmp_path: Path) -> None:
    stats = str(airports / "statistics")
    with pytest.raises(ConfigError, match=r"'test', not a split of .*splits: train, eval"):
        schema_gen.run(stats, str(tmp_path / "x"), exclude_splits=["test"])
    with pytest.raises(ConfigError, match="leaves no split"):
        schema_gen.run(stats, str(tmp_path / "y"), exclude_splits=["train", "eval"])
    with pytest.raises(ConfigError, match="drift_threshold 1.5"):
        schema_gen.run(stats, str(tmp_path / "z"), drift_threshold=1.5)
    assert not (tmp_path / "x").exists()


def test_schema_without_label_still_has_the_environments_the_validator_uses(
    airports: Path, tmp_path: Path
) -> None:
    schema_gen.run(str(airports / "statistics"), str(tmp_path / "s"))
    schema = schema_artifact.load(str(tmp_path / "s"))
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    assert not any(f.not_in_environment for f in schema.feature)


def test_report_names_the_open_features_and_what_was_done(airports: Path, tmp_path: Path) -> None:
    result = schema_gen.run(str(airports / "statistics"), str(tmp_path / "s"), drift_threshold=0.2)
    page = schema_gen.report_html(result, schema_artifact.load(str(tmp_path / "s")), "Schema of airports")
    assert "<script" not in page and "http" not in page
    for line in result.summary()[1:]:
        assert line.replace("'", "&#x27;") in page
    assert "feature &#x27;iata&#x27; looks like an ID" in page
    assert "inferred from splits train, eval" in page
    # Drift checks go to numbers and closed categories, never to the open strings.
    assert set(result.drift_features) == {"state", "country", "latitude", "longitude"}


def test_a_curated_schema_is_imported_unchanged_but_for_environments(tmp_path: Path, airports: Path) -> None:
    curated = local_path("pkg://kubetfx.schemas/penguins/schema.pbtxt")
    result = schema_gen.run(str(airports / "statistics"), str(tmp_path / "s"), schema_file=str(curated))
    assert result.splits == [] and result.strings == {} and result.open_features == {}
    assert result.source == str(curated)
    page = schema_gen.report_html(result, schema_artifact.load(str(tmp_path / "s")), "Schema")
    assert "Imported: types, presence and domains as the file states them." in page
    assert "closed domain" not in page
