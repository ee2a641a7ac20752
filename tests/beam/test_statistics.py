"""Statistics and validation computed by Beam workers in other processes equal the
in-process results: every feature's statistics (compared sorted by feature, numbers
within a relative 1e-9), the anomalies found and the skew measured."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_validator import executor as example_validator
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import beam_path
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics as statistics_artifact
from kubetfx.artifacts.tabular import read_table

REL = 1e-9


def _flat(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flat(v, f"{path}[{i}]", out)
    else:
        out[path] = value


def _features(dataset: Any) -> dict[str, dict[str, Any]]:
    """Each feature's statistics as flat fields, by feature path."""
    out = {}
    for feature in dataset.features:
        name = ".".join(feature.path.step) or feature.name
        fields: dict[str, Any] = {}
        _flat(json_format.MessageToDict(feature, preserving_proto_field_name=True), "", fields)
        out[name] = fields
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # int64 fields come back as text
        except ValueError:
            return None
    return None


def assert_same_statistics(ours: Any, theirs: Any) -> int:
    """Equal datasets: example counts, and every feature's fields (numbers within REL)."""
    assert theirs.num_examples == ours.num_examples
    mine, beam = _features(ours), _features(theirs)
    assert sorted(beam) == sorted(mine)
    compared = 0
    for name in sorted(mine):
        a, b = mine[name], beam[name]
        assert sorted(b) == sorted(a), f"{name}: fields differ: {sorted(set(a) ^ set(b))[:5]}"
        for field, value in a.items():
            x, y = _number(value), _number(b[field])
            if x is None or y is None:
                assert b[field] == value, f"{name}{field}: {b[field]!r} != {value!r}"
                continue
            compared += 1
            assert math.isclose(x, y, rel_tol=REL, abs_tol=0.0) or x == y, f"{name}{field}: {y} vs {x}"
    return compared


@pytest.fixture(scope="module")
def examples_dir(tables: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("beam-examples"))
    example_gen.run(tables["csv"], out, splits="train:3,eval:1")
    return out


def test_statistics_on_beam_workers_equal_the_in_process_ones(
    examples_dir: str, worker_pool: list[str], tmp_path: Path
) -> None:
    ours = statistics_gen.run(examples_dir, str(tmp_path / "in"))
    theirs = statistics_gen.run(examples_dir, str(tmp_path / "beam"), beam_pipeline_args=worker_pool)
    assert set(theirs.path.values()) == {"beam"} and "beam" not in set(ours.path.values())
    assert theirs.num_examples == ours.num_examples
    compared = 0
    for split in ours.num_examples:
        compared += assert_same_statistics(
            statistics_artifact.load(str(tmp_path / "in"), split).datasets[0],
            statistics_artifact.load(str(tmp_path / "beam"), split).datasets[0],
        )
    assert compared > 500


def test_validation_with_the_serving_sample_on_beam_equals_in_process(
    examples_dir: str, tables: dict[str, str], worker_pool: list[str], tmp_path: Path
) -> None:
    statistics_gen.run(examples_dir, str(tmp_path / "stats"))
    schema_gen.run(str(tmp_path / "stats"), str(tmp_path / "schema"), label_key="label")
    schema = schema_artifact.load(str(tmp_path / "schema"))
    for feature in schema.feature:  # skew is measured on every feature, with a tight bound
        if feature.name in ("group", "city"):
            feature.skew_comparator.infinity_norm.threshold = 0.01
        elif feature.name in ("score", "height", "count"):
            feature.skew_comparator.jensen_shannon_divergence.threshold = 0.01
    schema_artifact.write(str(tmp_path / "schema"), schema)
    # The serving sample's statistics themselves: Beam workers against this process.
    serving_beam = beam_path.statistics_of_input(tables["serving"], "serving", worker_pool)
    serving_here = statistics_gen.statistics_of_table(read_table(tables["serving"]), "serving")
    assert assert_same_statistics(serving_here.datasets[0], serving_beam.datasets[0]) > 100
    # ... and what the validator makes of them: the same anomalies, skew and drift.
    results = {}
    for where, args in (("in", []), ("beam", worker_pool)):
        results[where] = example_validator.run(
            str(tmp_path / "stats"),
            str(tmp_path / "schema"),
            str(tmp_path / where),
            serving_data_uri=tables["serving"],
            beam_pipeline_args=args,
        )
    ours, theirs = results["in"], results["beam"]
    assert "serving" in ours.anomalies
    assert theirs.anomaly_count == ours.anomaly_count
    assert theirs.findings() == ours.findings()
    for split, anomalies in ours.anomalies.items():
        assert theirs.anomalies[split] == anomalies, split
    assert len(ours.skew) >= 5 and sorted(theirs.skew) == sorted(ours.skew)
    for feature, value in ours.skew.items():
        assert math.isclose(theirs.skew[feature], value, rel_tol=REL), feature
