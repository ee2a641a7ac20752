"""kubetfx components under the KFP SDK's own local runner (``kfp.local.SubprocessRunner``).

Real parts only: kfp 2.13's own local orchestrator runs the components' compiled commands
(``sh -ec ... python3 -m kubetfx.task --kfp_executor kfp.dsl.executor_main ...``) with this
interpreter; the executors read the real penguins data with TFDV; lineage goes to a real
SQLite ML Metadata store named by ``KUBETFX_METADATA``.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import glob
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import dsl, local
from kfp.local import config as local_config
from kfp.local import subprocess_task_handler
from kubetfx.components import example_gen, schema_gen, statistics_gen

from kubetfx.lineage.query import list_runs, run_tasks
from kubetfx.lineage.store import connect

# The SDK warns for every task whose image name lacks "python" (kubetfx's does): expected here.
pytestmark = pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")

REPO = Path(__file__).resolve().parents[2]
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PIPELINE_NAME = "kfp-local-penguins"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A kfp.local session with its own pipeline root and lineage store.

    kfp.local's configuration is process-global, and while it is set a component called
    outside a pipeline *runs*: it is cleared afterwards, so other tests compose as usual.
    """
    base = tmp_path_factory.mktemp("kfp-local")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBETFX_METADATA", f"sqlite:///{base}/mlmd.sqlite")
        env.setenv("KUBETFX_PIPELINE_NAME", PIPELINE_NAME)
        env.delenv("KUBETFX_RUN_ID", raising=False)
        env.delenv("KUBETFX_TASK_NAME", raising=False)
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(base / "root"))
        try:
            yield {"base": base, "store": connect(f"sqlite:///{base}/mlmd.sqlite"), "env": env}
        finally:
            local_config.LocalExecutionConfig.instance = None


@dsl.pipeline(name="kfp-local-penguins")
def penguins(input_uri: str = PENGUINS) -> dsl.Artifact:
    examples = example_gen(input_uri=input_uri)
    stats = statistics_gen(examples=examples.outputs["examples"])
    schema = schema_gen(statistics=stats.outputs["statistics"], label_key="species")
    return schema.outputs["schema"]


@pytest.fixture(scope="module")
def pipeline_run(session: dict[str, Any]) -> dict[str, Any]:
    """ExampleGen -> StatisticsGen -> SchemaGen, run once by kfp.local's pipeline orchestrator."""
    before = {run.run_id for run in list_runs(session["store"], pipeline=PIPELINE_NAME)}
    task = penguins()
    (run_id,) = {run.run_id for run in list_runs(session["store"], pipeline=PIPELINE_NAME)} - before
    return {"schema": task.output, "run_id": run_id, "tasks": run_tasks(session["store"], run_id)}


def test_the_sdk_accepts_every_compiled_kubetfx_component() -> None:
    """The SDK's own check (it looks for kfp.dsl.executor_main in the command) passes for
    every checked-in component.yaml, whose command still runs kubetfx.task."""
    paths = sorted(REPO.glob("components/*/component.yaml"))
    assert len(paths) >= 9
    for path in paths:
        container = yaml.safe_load(path.read_text())["deploymentSpec"]["executors"]
        ((_, executor),) = container.items()
        command = executor["container"]["command"] + executor["container"]["args"]
        subprocess_task_handler.SubprocessTaskHandler(
            image=executor["container"]["image"],
            full_command=command,
            pipeline_root="/tmp/unused",
            runner=local.SubprocessRunner(use_venv=False),
        )
        shell = command[2]
        assert "python3 -m kubetfx.task --kfp_executor kfp.dsl.executor_main" in shell, path


def test_kubetfx_task_refuses_an_executor_it_does_not_wrap(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "kubetfx.task", "--kfp_executor", "my.executor", "--function_to_execute", "f"]
        + ["--executor_input", "{}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "KUBETFX_METADATA"},
    )
    assert process.returncode == 2
    assert "--kfp_executor: invalid choice: 'my.executor'" in process.stderr


def test_pipeline_outputs_are_real(pipeline_run: dict[str, Any]) -> None:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    tasks = {t.task_name: t for t in pipeline_run["tasks"]}
    ((_, _, examples_uri),) = tasks["example-gen"].outputs["examples"]
    for split in ("train", "eval"):
        assert glob.glob(f"{examples_uri}/Split-{split}/data_tfrecord-*.gz"), split
    ((_, _, statistics_uri),) = tasks["statistics-gen"].outputs["statistics"]
    for split in ("train", "eval"):
        assert Path(statistics_uri, f"Split-{split}", "FeatureStats.pb").stat().st_size > 0
    # The pipeline's output, as kfp.local hands it back, is the schema SchemaGen wrote.
    schema_artifact = pipeline_run["schema"]
    assert schema_artifact.metadata["label_key"] == "species"
    schema = text_format.Parse(Path(schema_artifact.uri, "schema.pbtxt").read_text(), schema_pb2.Schema())
    assert {"species", "island", "sex", "body_mass_g"} <= {f.name for f in schema.feature}
    assert not glob.glob(f"{examples_uri}.partial-*"), "a staging folder was left behind"


def test_lineage_is_recorded_in_the_store_kubetfx_metadata_names(pipeline_run: dict[str, Any]) -> None:
    tasks = pipeline_run["tasks"]
    assert [(t.task_name, t.state) for t in tasks] == [
        ("example-gen", "COMPLETE"),
        ("statistics-gen", "COMPLETE"),
        ("schema-gen", "COMPLETE"),
    ]
    # kfp.local's run id (its {{$.pipeline_job_id}}) identifies the run, the same for all tasks.
    assert pipeline_run["run_id"].isdigit()
    by_name = {t.task_name: t for t in tasks}
    for task in tasks:
        assert task.properties["pipeline_name"] == PIPELINE_NAME  # KUBETFX_PIPELINE_NAME
        assert task.properties["run_id"] == pipeline_run["run_id"]
    assert by_name["example-gen"].properties["inputs"]["input_uri"] == PENGUINS
    assert by_name["example-gen"].properties["outputs"]["row_count"] == 344
    assert by_name["statistics-gen"].properties["outputs"]["num_examples"] == 344
    # One lineage across the three processes: each task's input is its upstream's output.
    store = connect(os.environ["KUBETFX_METADATA"])
    for upstream, key, downstream in [
        ("example-gen", "examples", "statistics-gen"),
        ("statistics-gen", "statistics", "schema-gen"),
    ]:
        ((artifact_id, _, _),) = by_name[upstream].outputs[key]
        events = store.mlmd.get_events_by_execution_ids([by_name[downstream].execution_id])
        assert artifact_id in {e.artifact_id for e in events if e.type == e.INPUT}, downstream


@pytest.fixture(scope="module")
def single_task(session: dict[str, Any]) -> Any:
    """ExampleGen called on its own, outside a pipeline: kfp.local runs it at once."""
    session["env"].setenv("KUBETFX_RUN_ID", "single-task-run")
    try:
        return example_gen(input_uri=PENGUINS, splits="train:1,eval:1")
    finally:
        session["env"].delenv("KUBETFX_RUN_ID")


def test_a_single_task_runs_and_records_its_execution(session: dict[str, Any], single_task: Any) -> None:
    assert single_task.outputs["row_count"] == 344
    examples = single_task.outputs["examples"]
    assert glob.glob(f"{examples.uri}/Split-train/data_tfrecord-*.gz")
    (recorded,) = run_tasks(session["store"], "single-task-run")
    assert recorded.state == "COMPLETE"
    assert [uri for _, _, uri in recorded.outputs["examples"]] == [examples.uri]


def test_an_imported_artifact_joins_the_lineage_of_the_task_that_wrote_it(
    session: dict[str, Any], single_task: Any
) -> None:
    """dsl.importer (run by kfp.local itself, no kubetfx wrapper) feeding a kubetfx task: the
    task's input is the very artifact ExampleGen's execution produced, found by its URI."""
    examples = single_task.outputs["examples"]

    @dsl.pipeline(name="kfp-local-imported")
    def imported(uri: str) -> dsl.Artifact:
        data = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, metadata=examples.metadata)
        return statistics_gen(examples=data.output).outputs["statistics"]

    statistics = imported(uri=examples.uri).output
    assert Path(statistics.uri, "Split-eval", "FeatureStats.pb").stat().st_size > 0
    (produced,) = run_tasks(session["store"], "single-task-run")
    ((examples_id, _, _),) = produced.outputs["examples"]
    mlmd = session["store"].mlmd
    (written,) = mlmd.get_artifacts_by_uri(statistics.uri)
    (wrote,) = [e for e in mlmd.get_events_by_artifact_ids([written.id]) if e.type == e.OUTPUT]
    events = mlmd.get_events_by_execution_ids([wrote.execution_id])
    assert {e.artifact_id for e in events if e.type == e.INPUT} == {examples_id}


def test_a_failing_task_fails_the_sdk_call_and_is_recorded_failed(session: dict[str, Any]) -> None:
    missing = session["base"] / "no-such-file.csv"
    session["env"].setenv("KUBETFX_RUN_ID", "failing-run")
    try:
        with pytest.raises(RuntimeError, match=r"example-gen.* finished with status .*FAILURE"):
            example_gen(input_uri=str(missing))
    finally:
        session["env"].delenv("KUBETFX_RUN_ID")
    (recorded,) = run_tasks(session["store"], "failing-run")
    assert recorded.state == "FAILED"
    assert str(missing) in str(recorded.properties), recorded.properties
    assert not recorded.outputs


def test_conditions_are_refused_by_the_sdk_before_any_task_runs(session: dict[str, Any]) -> None:
    """kfp 2.13's local orchestrator has no dsl.If; ``kubetfx run`` is the way to run one."""

    @dsl.pipeline(name="kfp-local-condition")
    def conditional(run_it: bool = True) -> None:
        with dsl.If(run_it == True):  # noqa: E712 - a KFP condition
            example_gen(input_uri=PENGUINS)

    with pytest.raises(NotImplementedError, match="'dsl.Condition' is not supported"):
        conditional()
