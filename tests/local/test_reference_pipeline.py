"""The reference pipeline through the CLI, as a user runs it, and the lineage it leaves."""

import re
import shutil
from pathlib import Path

from kfp import dsl
from kubetfx.components import example_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
TASKS = ("example-gen", "statistics-gen", "schema-gen", "example-validator", "trainer")


@dsl.pipeline(name="read-only")
def read_only(input_uri: str = ""):
    example_gen(input_uri=input_uri)


def _run_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Run "))
    return line.split()[1]


def _state(stdout: str, task: str) -> str:
    # Tasks inside a condition are named after it ("condition-1/pusher").
    match = re.search(rf"^(?:\S+/)?{re.escape(task)}\s+([A-Z_]+)", stdout, re.MULTILINE)
    assert match, f"no row for {task} in:\n{stdout}"
    return match.group(1)


def _by_task(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return {props(e)["task_name"].split("/")[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def test_cli_run_summary_cache_and_lineage(workdir: Path, cli) -> None:
    first = cli("run", PIPELINE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert all(_state(first.stdout, t) == "SUCCEEDED" for t in TASKS)
    assert "Lineage:  sqlite:///" in first.stdout and "runs show" in first.stdout
    run_id = _run_id(first.stdout)

    second = cli("run", PIPELINE)
    assert second.returncode == 0
    assert all(_state(second.stdout, t) == "CACHED" for t in TASKS)
    # The unchanged model is already served: evaluated against itself, not pushed again.
    assert _state(first.stdout, "pusher") == "SUCCEEDED" and "already served" in second.stdout
    assert sorted(p.name for p in (workdir / "serving/penguins").iterdir()) == ["1"]

    listed = cli("runs")
    assert run_id in listed.stdout and "SUCCEEDED" in listed.stdout
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0
    assert re.search(r"example-gen\s+COMPLETE", shown.stdout) and "system.Dataset" in shown.stdout
    assert "kubetfx.ExampleStatistics" in shown.stdout and "kubetfx.Schema" in shown.stdout

    # The lineage follows the KFP backend's layout.
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    run_ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    assert run_ctx is not None and props(run_ctx)["state"] == "SUCCEEDED"
    assert store.mlmd.get_context_by_type_and_name("system.Pipeline", "kubetfx-training") is not None
    executions = _by_task(store, run_id)
    assert set(executions) == {*TASKS, "data-fingerprint", "model-resolver", "evaluator", "pusher"}
    execution = executions["example-gen"]
    assert store.mlmd.get_execution_types_by_id([execution.type_id])[0].name == "system.ContainerExecution"
    p = props(execution)
    assert execution.last_known_state == pb.Execution.COMPLETE
    assert p["task_name"] == p["display_name"] == "example-gen"
    assert len(p["cache_fingerprint"]) == 64
    assert p["kubetfx_component_version"].startswith("0.1.0+")
    assert p["inputs"]["input_uri"] == "pkg://palmerpenguins/data/penguins.csv"
    assert p["outputs"]["row_count"] == 344
    [event] = store.mlmd.get_events_by_execution_ids([execution.id])
    assert event.type == pb.Event.OUTPUT and event.path.steps[0].key == "examples"
    [artifact] = store.mlmd.get_artifacts_by_id([event.artifact_id])
    assert store.mlmd.get_artifact_types_by_id([artifact.type_id])[0].name == "system.Dataset"
    meta = props(artifact)
    assert meta["row_count_train"] + meta["row_count_eval"] == 344
    assert meta["span"] == 0 and len(meta["fingerprint"]) == 32
    assert Path(artifact.uri, "Split-train").is_dir()
    # StatisticsGen consumed that very artifact: an INPUT event links them.
    stats_events = store.mlmd.get_events_by_execution_ids([executions["statistics-gen"].id])
    assert any(e.type == pb.Event.INPUT and e.artifact_id == artifact.id for e in stats_events)
    # Provenance of the model and impact of the data, as a user asks them.
    [model_event] = [
        e
        for e in store.mlmd.get_events_by_execution_ids([executions["trainer"].id])
        if e.type == pb.Event.OUTPUT and e.path.steps[0].key == "model"
    ]
    [model] = store.mlmd.get_artifacts_by_id([model_event.artifact_id])
    upstream = cli("lineage", "model", model.uri)
    assert upstream.returncode == 0, upstream.stderr
    for expected in (
        "system.Model",
        "trainer (execution",
        "example-gen (execution",
        "schema-gen (execution",
        "input_uri=pkg://palmerpenguins/data/penguins.csv",
        f"run {run_id}",
        "label_key=species",
        "code 0.1.0+",
        "span=0",
        "fingerprint=",
    ):
        assert expected in upstream.stdout, (expected, upstream.stdout)
    downstream = cli("lineage", "dataset", str(artifact.id))
    assert downstream.returncode == 0, downstream.stderr
    assert f"models trained on it: {model.id}" in downstream.stdout
    assert "statistics-gen (execution" in downstream.stdout and "trainer (execution" in downstream.stdout
    picture = cli("lineage", "graph", str(model.id), "-o", str(workdir / "provenance.png"))
    assert picture.returncode == 0, picture.stderr
    assert (workdir / "provenance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        cli(
            "lineage", "graph", str(artifact.id), "--downstream", "-o", str(workdir / "impact.svg")
        ).returncode
        == 0
    )
    svg = (workdir / "impact.svg").read_text()
    assert "<svg" in svg and "trainer" in svg and "kubetfx.ExampleStatistics" in svg
    bad = cli("lineage", "graph", str(model.id), "-o", str(workdir / "graph.jpg"))
    assert bad.returncode == 2 and "give a .svg, .png or .pdf" in bad.stderr
    unknown = cli("lineage", "model", "999999")
    assert (
        unknown.returncode == 2
        and len(unknown.stderr.strip().splitlines()) == 1
        and "no artifact" in unknown.stderr
    )
    pushed = cli("lineage", "model", "penguins:3")  # only version 1 was pushed
    assert pushed.returncode == 2 and "no push of model 'penguins' version 3" in pushed.stderr
    assert len(pushed.stderr.strip().splitlines()) == 1
    served = cli("lineage", "model", "penguins:1")
    assert served.returncode == 0 and "trainer (execution" in served.stdout

    # The cached run's executions point at the first ones and reuse their artifacts.
    cached = _by_task(store, _run_id(second.stdout))["example-gen"]
    assert cached.last_known_state == pb.Execution.CACHED
    assert props(cached)["cached_execution_id"] == str(execution.id)
    [cached_event] = store.mlmd.get_events_by_execution_ids([cached.id])
    assert cached_event.artifact_id == artifact.id


def test_changed_data_at_the_same_path_and_deleted_outputs_miss_the_cache(
    workdir: Path, cli, compile_to
) -> None:
    data = workdir / "data.csv"
    shutil.copy(local_path("pkg://palmerpenguins/data/penguins.csv"), data)
    args = ("run", str(compile_to(read_only)), "--param", f"input_uri={data}")
    assert cli(*args).returncode == 0
    assert _state(cli(*args).stdout, "example-gen") == "CACHED"

    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-10]) + "\n")  # same path, different content
    assert _state(cli(*args).stdout, "example-gen") == "SUCCEEDED"
    again = cli(*args)
    assert _state(again.stdout, "example-gen") == "CACHED"

    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    execution = _by_task(store, _run_id(again.stdout))["example-gen"]
    [event] = store.mlmd.get_events_by_execution_ids([execution.id])
    [artifact] = store.mlmd.get_artifacts_by_id([event.artifact_id])
    assert props(artifact)["row_count_train"] + props(artifact)["row_count_eval"] == 334
    shutil.rmtree(artifact.uri)  # outputs deleted since: the hit must not be used
    assert _state(cli(*args).stdout, "example-gen") == "SUCCEEDED"
    assert _state(cli(*args, "--no-cache").stdout, "example-gen") == "SUCCEEDED"


def test_bad_input_fails_the_run_with_the_file_and_line_and_publishes_nothing(workdir: Path, cli) -> None:
    data = workdir / "ragged.csv"
    data.write_text("a,b\n1,2\n3,4,5\n")
    result = cli("run", PIPELINE, "--param", f"input_uri={data}")
    assert result.returncode == 1
    assert f"{data}:3: row has 3 fields but the header has 2" in result.stdout
    assert _state(result.stdout, "example-gen") == "FAILED"
    assert _state(result.stdout, "statistics-gen") == "NOT_RUN"
    assert _state(result.stdout, "example-validator") == "NOT_RUN"
    assert _state(result.stdout, "trainer") == "NOT_RUN"
    assert not list(workdir.glob("root/**/examples")), "no output may be published on failure"
    assert not list(workdir.glob("root/**/examples.partial-*")), "staging must be cleaned up"
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    executions = _by_task(store, _run_id(result.stdout))
    assert executions["example-gen"].last_known_state == pb.Execution.FAILED
    assert "row has 3 fields" in props(executions["example-gen"])["error"]
    assert executions["statistics-gen"].last_known_state == pb.Execution.CANCELED
    assert "example-gen failed" in props(executions["statistics-gen"])["skipped_reason"]
    assert store.mlmd.get_artifacts() == []


def test_cli_errors_are_one_line(workdir: Path, cli) -> None:
    bad_type = cli("run", PIPELINE, "--param", "splits")
    assert bad_type.returncode == 2 and "is not NAME=VALUE" in bad_type.stderr
    unknown = cli("run", PIPELINE, "--param", "nope=1")
    assert unknown.returncode == 2 and "unknown parameter 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    wrong = cli("run", PIPELINE, "--param", "fail_on_anomalies=maybe")
    assert wrong.returncode == 2 and "'fail_on_anomalies' must be true or false" in wrong.stderr
    not_pipeline = workdir / "x.yaml"
    not_pipeline.write_text("a: 1\n")
    result = cli("run", str(not_pipeline))
    assert result.returncode == 2 and "not a compiled KFP pipeline" in result.stderr
    missing = cli("runs", "show", "no-such-run")
    assert missing.returncode == 2 and "not found" in missing.stderr
