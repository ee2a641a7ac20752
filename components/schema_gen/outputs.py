"""What a schema becomes in Kubeflow Pipelines: the Schema artifact's metadata, the
decisions in the task's log and the HTML report. The component's body calls
:func:`publish`; tests call it with plain ``kfp.dsl`` artifacts."""

from __future__ import annotations

from typing import Any

from kubetfx.components.schema_gen.executor import SchemaResult, report_html

from kubetfx.artifacts import schema as schema_artifact
from kubetfx.reports import write_report


def publish(result: SchemaResult, *, schema: Any, report: Any, title: str) -> None:
    """Fill the outputs from ``result`` and print its decisions, one a line."""
    schema.metadata.update(result.metadata())
    for line in result.summary():
        print(line)
    write_report(report, report_html(result, schema_artifact.load(schema.path), title))
