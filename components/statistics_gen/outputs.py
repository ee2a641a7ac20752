"""What computed statistics become in Kubeflow Pipelines: the ExampleStatistics
artifact's metadata, the HTML report and the output parameter. The component's body calls
:func:`publish`; tests call it with plain ``kfp.dsl`` artifacts."""

from __future__ import annotations

from typing import Any

from kubetfx.components.statistics_gen.executor import StatisticsResult

from kubetfx.artifacts import statistics as statistics_artifact
from kubetfx.reports import statistics_html, write_report
from kubetfx.settings import redacted_features


def publish(
    result: StatisticsResult, *, statistics: Any, report: Any, examples_metadata: dict[str, Any], title: str
) -> int:
    """Fill the outputs from ``result`` (the report leaves out the redacted features' values);
    returns the number of examples over all splits."""
    statistics.metadata.update(result.metadata(examples_metadata))
    stats = {split: statistics_artifact.load(statistics.path, split) for split in result.num_examples}
    write_report(report, statistics_html(stats, title=title, redact=redacted_features()))
    return sum(result.num_examples.values())
