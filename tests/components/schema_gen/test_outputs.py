"""What StatisticsGen's and SchemaGen's bodies hand KFP: artifact metadata, reports and
output parameters, from results computed on real penguins data."""

from __future__ import annotations

from pathlib import Path

from kfp import dsl
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.schema_gen import outputs as schema_outputs
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.statistics_gen import outputs as statistics_outputs


def _artifact(path: Path) -> dsl.Artifact:
    return dsl.Artifact(uri=str(path), metadata={})


def test_statistics_and_schema_outputs(tmp_path: Path, capsys) -> None:
    examples = example_gen.run("pkg://palmerpenguins/data/penguins.csv", str(tmp_path / "examples"))
    statistics, schema = _artifact(tmp_path / "statistics"), _artifact(tmp_path / "schema")
    stats_report, schema_report = _artifact(tmp_path / "stats-report"), _artifact(tmp_path / "schema-report")

    computed = statistics_gen.run(str(tmp_path / "examples"), statistics.path)
    count = statistics_outputs.publish(
        computed,
        statistics=statistics,
        report=stats_report,
        examples_metadata=examples.metadata(),
        title="Statistics of penguins",
    )
    assert count == sum(examples.row_counts.values()) == 344
    assert statistics.metadata == computed.metadata(examples.metadata())
    assert statistics.metadata["examples_fingerprint"] == examples.fingerprint
    assert "Statistics of penguins" in Path(stats_report.path).read_text()

    inferred = schema_gen.run(statistics.path, schema.path, label_key="species")
    schema_outputs.publish(inferred, schema=schema, report=schema_report, title="Schema of penguins")
    assert schema.metadata == inferred.metadata()
    assert capsys.readouterr().out.splitlines()[: len(inferred.summary())] == inferred.summary()
    page = Path(schema_report.path).read_text()
    assert "Schema of penguins" in page and "island" in page
