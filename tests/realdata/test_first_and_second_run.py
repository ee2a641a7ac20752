"""Real datasets through ExampleGen, StatisticsGen, SchemaGen and ExampleValidator.

First run, default settings: no anomaly, and the schema names the columns it could not
close (IDs, free text, dates). Second run on deliberately changed data (one numeric column
shifted, one new category, one column emptied), against the first run's schema (as kept
by a user) and statistics (the drift baseline): exactly those three features are flagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_validator import executor as validator
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts import layout, tabular
from kubetfx.artifacts import schema as schema_artifact

NEW_CATEGORY = "Atlantis"


def _statistics(source: Path, root: Path) -> str:
    example_gen.run(str(source), str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    return str(root / "statistics")


def _flagged(result: validator.ValidationResult) -> dict[str, list[str]]:
    """Feature name (from the anomaly's path, unquoted) -> the descriptions, over all splits."""
    found: dict[str, list[str]] = {}
    for anomalies in result.anomalies.values():
        for info in anomalies.anomaly_info.values():
            name = ".".join(info.path.step)
            found.setdefault(name, []).extend(r.description for r in info.reason)
    return found


@pytest.fixture(scope="module")
def first_run(dataset, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp(f"{dataset.name}-first")
    statistics = _statistics(dataset.path(), root)
    schema = schema_gen.run(statistics, str(root / "schema"), label_key=dataset.label)
    result = validator.run(statistics, str(root / "schema"), str(root / "anomalies"))
    return {"root": root, "statistics": statistics, "schema": schema, "validation": result}


def test_first_run_with_defaults_has_no_anomaly(dataset, first_run) -> None:
    result = first_run["validation"]
    assert result.problems() == []
    assert set(result.anomalies) == {"train", "eval"}


def test_first_run_schema_leaves_ids_text_and_dates_open(dataset, first_run) -> None:
    schema_result = first_run["schema"]
    assert schema_result.splits == ["train", "eval"]
    assert schema_result.open_features == dataset.open_features
    schema = schema_artifact.load(str(first_run["root"] / "schema"))
    by_name = {f.name: f for f in schema.feature}
    for name in dataset.open_features:
        feature = by_name[name]
        assert not feature.HasField("domain") and not feature.HasField("string_domain"), name
    # The categorical column the second run changes keeps a closed domain holding every
    # value of every split, the rare ones included.
    frame = pd.read_csv(dataset.path(), keep_default_na=False, na_values=[""], dtype=str)
    category = by_name[dataset.category]
    assert category.HasField("domain")
    domain = next(d for d in schema.string_domain if d.name == category.domain)
    values = set(frame[dataset.category].dropna()) - set(tabular.NULL_VALUES)
    assert set(domain.value) == values
    # What SchemaGen decided is in the artifact's metadata (and so in lineage).
    metadata = schema_result.metadata()
    assert metadata["inferred_from_splits"] == ["train", "eval"]
    assert metadata["open_features"] == dataset.open_features
    assert metadata["string_features"][dataset.category]["closed_domain"] is True
    # Filled string columns must keep a value in every split (an emptied one is flagged);
    # sparse ones (comments) need not.
    for name, profile in schema_result.strings.items():
        constrained = by_name[name].HasField("unique_constraints")
        assert constrained == (profile.values >= 0.5 * profile.rows), name


def test_second_run_flags_exactly_the_changed_features(dataset, first_run, tmp_path: Path) -> None:
    frame = pd.read_csv(dataset.path(), keep_default_na=False, dtype=str)
    numbers = pd.to_numeric(frame[dataset.shift], errors="coerce")
    shift = round(3 * numbers.std())  # a whole number: an INT column stays INT
    frame[dataset.shift] = (numbers + shift).map(lambda v: "" if pd.isna(v) else f"{v:g}")
    frame.loc[frame.index[::7], dataset.category] = NEW_CATEGORY
    frame[dataset.empty] = ""
    changed = tmp_path / f"{dataset.name}-changed.csv"
    frame.to_csv(changed, index=False)

    statistics = _statistics(changed, tmp_path)
    # The first run's schema, kept as a curated file, with a drift check on every feature
    # that can have one.
    kept = str(first_run["root"] / "schema" / layout.SCHEMA_FILE)
    imported = schema_gen.run(statistics, str(tmp_path / "schema"), schema_file=kept, drift_threshold=0.3)
    assert dataset.shift in imported.drift_features
    result = validator.run(
        statistics,
        str(tmp_path / "schema"),
        str(tmp_path / "anomalies"),
        baseline_statistics_dir=first_run["statistics"],
    )
    flagged = _flagged(result)
    assert set(flagged) == {dataset.shift, dataset.category, dataset.empty}, flagged
    assert dataset.shift in result.drifted
    assert set(result.drifted) <= set(flagged)
    assert any("Jensen-Shannon" in d for d in flagged[dataset.shift])
    assert any(NEW_CATEGORY in d for d in flagged[dataset.category])
    # The failure message names each of them.
    message = validator.failure_message(result)
    for name in (dataset.shift, dataset.category, dataset.empty):
        assert name in message
