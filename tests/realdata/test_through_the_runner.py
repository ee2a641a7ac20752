"""The data-validation steps as compiled KFP components, run by ``kubetfx run`` on a real
raw table: the first run passes with default settings, and lineage records what SchemaGen
inferred (splits, the columns left without a closed domain)."""

# No "from __future__ import annotations": KFP reads the pipeline signature's types.

import json
import re
from pathlib import Path

import pytest
from kfp import dsl
from kubetfx.components import example_gen, example_validator, schema_gen, statistics_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import SCHEMA, TYPE_KEY
from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect


@dsl.pipeline(name="realdata-validation")
def validation(input_uri: str, label_key: str = ""):
    examples = example_gen(input_uri=input_uri)
    stats = statistics_gen(examples=examples.outputs["examples"])
    schema = schema_gen(statistics=stats.outputs["statistics"], label_key=label_key)
    example_validator(statistics=stats.outputs["statistics"], schema=schema.outputs["schema"])


@pytest.mark.slow
def test_penguins_raw_first_run_passes_and_lineage_names_the_free_columns(
    workdir: Path, cli, compile_to
) -> None:
    source = local_path("pkg://palmerpenguins/data/penguins-raw.csv")
    pipeline = compile_to(validation)
    run = cli("run", str(pipeline), "--param", f"input_uri={source}", "--param", "label_key=Species")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^example-validator\s+SUCCEEDED", run.stdout, re.MULTILINE), run.stdout

    store = connect(f"sqlite:///{workdir}/mlmd.sqlite").mlmd
    schemas = [a for a in store.get_artifacts() if props(a).get(TYPE_KEY) == SCHEMA]
    assert len(schemas) == 1, [a.uri for a in store.get_artifacts()]
    recorded = props(schemas[0])
    assert json.loads(recorded["inferred_from_splits"]) == ["train", "eval"]  # lists are stored as JSON
    assert recorded["open_features"] == {"Comments": "free text", "Date Egg": "date", "Individual ID": "id"}
    reports = [a for a in store.get_artifacts() if a.uri.endswith("/report.html") and "schema-gen" in a.uri]
    assert reports, [a.uri for a in store.get_artifacts()]
    page = Path(reports[0].uri).read_text()
    assert "Date Egg" in page and "looks like a date or time" in page
    assert all(e.last_known_state == pb.Execution.COMPLETE for e in store.get_executions()), json.dumps(
        [props(e) for e in store.get_executions()], default=str
    )
