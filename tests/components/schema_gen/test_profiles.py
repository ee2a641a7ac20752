"""SchemaGen's string profiling rules on hand-made statistics (no TensorFlow needed)."""

from __future__ import annotations

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from kubetfx import schema_tools


@pytest.mark.parametrize(
    "text",
    [
        "2007-11-11",
        "2012/01/01",
        "11/30/2007",
        "30.11.2007",
        "Jan 1 2000",
        "January 1, 2000",
        "01-Jan-2000",
        "2021-03-04T10:00:00Z",
        "2021-03-04 10:00:00.123456",
        "2021-03-04T10:00:00+01:00",
        "10:30",
        "10:30:15 pm",
        "20071111T1030",
    ],
)
def test_dates_times_and_timestamps_are_recognised(text: str) -> None:
    assert schema_tools.DATE_OR_TIME.match(text)


@pytest.mark.parametrize("text", ["Dream", "N1A1", "2007", "PAL0708", "1.5", "Adult, 1 Egg Stage", "12-345"])
def test_other_strings_are_not_dates(text: str) -> None:
    assert not schema_tools.DATE_OR_TIME.match(text)


Stats = statistics_pb2.DatasetFeatureStatisticsList


def _split(counts: dict[str, int], rows: int, unique: int | None = None) -> Stats:
    """One split's statistics of a string feature "f" with these value counts."""
    stats = Stats()
    dataset = stats.datasets.add(num_examples=rows)
    feature = dataset.features.add()
    feature.path.step.append("f")
    strings = feature.string_stats
    strings.common_stats.tot_num_values = sum(counts.values())
    strings.unique = len(counts) if unique is None else unique
    for label, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        strings.rank_histogram.buckets.add(label=label, sample_count=count)
    return stats


def _profile(*splits: Stats, max_size: int = 100) -> schema_tools.StringProfile:
    return schema_tools.profile_strings(list(splits), max_size)["f"]


def test_a_well_sampled_category_keeps_its_domain_even_with_a_rare_value() -> None:
    profile = _profile(_split({"a": 50, "b": 40}, 90), _split({"a": 30, "c": 1}, 31))
    assert profile.closed and profile.kind == "category"
    assert (profile.values, profile.distinct, profile.seen_once) == (121, 3, 1)
    assert profile.values_required


def test_many_values_seen_once_open_the_domain() -> None:
    ids = {f"N{i}A{i % 2}": 1 for i in range(30)} | {"N0A9": 2}
    assert _profile(_split(ids, 32)).kind == "id"
    words = {f"note number {i} here": 1 for i in range(8)} | {"same note again": 40}
    profile = _profile(_split(words, 200))
    assert profile.kind == "free text" and not profile.closed
    assert not profile.values_required  # 48 values in 200 rows: sparse
    names = {f"Town{chr(65 + i)}": 1 for i in range(10)} | {"Springfield": 60}
    assert _profile(_split(names, 70)).kind == "high-cardinality"


def test_more_values_than_the_domain_size_or_the_histogram_open_it() -> None:
    assert not _profile(_split({"x": 50, "y": 50, "z": 50}, 150), max_size=2).closed
    truncated = _profile(_split({"a": 500, "b": 400}, 900, unique=5000))
    assert not truncated.exact and not truncated.closed and truncated.distinct == 5000


def test_dates_are_open_however_often_each_repeats() -> None:
    profile = _profile(_split({"2007-11-11": 100, "2007-11-12": 100}, 200))
    assert profile.kind == "date" and not profile.closed


def test_open_domains_removes_only_the_open_features_domains() -> None:
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name in ("f", "g"):
        schema.feature.add(name=name, type=schema_pb2.BYTES, domain=name)
        schema.string_domain.add(name=name, value=["x"])
    profiles = schema_tools.profile_strings([_split({"2007-11-11": 3}, 3)])
    schema_tools.open_domains(schema, profiles)
    assert [f.HasField("domain") for f in schema.feature] == [False, True]
    assert [d.name for d in schema.string_domain] == ["g"]
