"""KUBETFX_REDACT_FEATURES keeps raw feature values out of reports."""

from tensorflow_metadata.proto.v0 import statistics_pb2

from kubetfx.reports import statistics_html
from kubetfx.settings import is_redacted, redact_value, redacted_features


def _stats() -> statistics_pb2.DatasetFeatureStatisticsList:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=3)
    for name, values in (("postcode", ["SW1A 1AA", "EC1A 1BB"]), ("island", ["Dream"])):
        feature = dataset.features.add()
        feature.path.step.append(name)
        feature.string_stats.common_stats.num_non_missing = 3
        for value in values:
            feature.string_stats.top_values.add(value=value, frequency=1)
    return stats


def test_named_features_are_redacted_in_the_statistics_view(monkeypatch) -> None:
    monkeypatch.setenv("KUBETFX_REDACT_FEATURES", "postcode")
    page = statistics_html({"train": _stats()}, redact=redacted_features())
    assert "SW1A 1AA" not in page and "EC1A 1BB" not in page and "redacted" in page
    assert "Dream" in page  # other features keep their values


def test_star_redacts_every_feature(monkeypatch) -> None:
    monkeypatch.setenv("KUBETFX_REDACT_FEATURES", "*")
    assert is_redacted("anything")
    page = statistics_html({"train": _stats()}, redact=redacted_features())
    assert "Dream" not in page and "SW1A 1AA" not in page


def test_stand_ins_are_stable_and_distinct() -> None:
    assert redact_value("sex", "female") == redact_value("sex", "female")
    assert redact_value("sex", "female") != redact_value("sex", "male")
    assert "female" not in redact_value("sex", "female")
