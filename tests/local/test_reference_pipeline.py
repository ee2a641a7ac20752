"""The reference pipeline through the CLI, as a user runs it, and the lineage it leaves."""

import re
import shutil
from pathlib import Path

from kfp import dsl
from kubetfx.components import example_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.dsl import component
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


def _rows(stdout: str, show: bool = False) -> dict[str, tuple[str, str]]:
    """Task -> (state, time) from the run summary, or from `kubetfx runs show` (whose rows
    start with the execution id)."""
    pattern = r"^\s*\d+\s+(\S+)\s+([A-Z_]+)\b *(\d+\.\ds)?" if show else r"^(\S+)\s+([A-Z_]+)\b *(\d+\.\ds)?"
    return {
        m.group(1): (m.group(2), m.group(3) or "")
        for m in re.finditer(pattern, stdout, re.MULTILINE)
        if m.group(1) not in ("task", "execution")
    }


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
    assert all(_state(second.stdout, t) == "CACHED" for t in TASKS if t != "example-validator")
    # The validator reads its drift baseline from lineage: never from a cache.
    assert _state(second.stdout, "example-validator") == "SUCCEEDED"
    # The unchanged model is already served: evaluated against itself, not pushed again.
    assert _state(first.stdout, "pusher") == "SUCCEEDED" and "already served" in second.stdout
    assert sorted(p.name for p in (workdir / "serving/penguins").iterdir()) == ["1"]

    listed = cli("runs")
    assert run_id in listed.stdout and "SUCCEEDED" in listed.stdout
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0
    # One vocabulary of states, one timing: `runs show` says what the summary said.
    assert _rows(shown.stdout, show=True) == {
        task: row for task, row in _rows(first.stdout).items() if task in _rows(shown.stdout, show=True)
    }
    assert _rows(shown.stdout, show=True)["example-gen"][0] == "SUCCEEDED"
    assert "system.Dataset" in shown.stdout
    # Every HTML report is a file named .html (a browser renders it), recorded at that URI
    # (what the Kubeflow UI reads).
    reports = {
        line.split()[0]: line.split()[-1] for line in shown.stdout.splitlines() if " system.HTML " in line
    }
    # Tasks inside a condition are named after it ("condition-1/pusher").
    assert {task.split("/")[-1] for task in reports} == {
        "statistics-gen",
        "schema-gen",
        "example-validator",
        "trainer",
        "evaluator",
        "pusher",
        "model-card",
    }, shown.stdout
    for uri in reports.values():
        assert uri.endswith("/report.html") and Path(uri).read_text().startswith("<!doctype html>"), uri
        assert not Path(uri[: -len(".html")]).exists() and not list(Path(uri).parent.glob("*.partial-*"))
    assert "kubetfx.ExampleStatistics" in shown.stdout and "kubetfx.Schema" in shown.stdout

    # The lineage follows the KFP backend's layout.
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    run_ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    assert run_ctx is not None and props(run_ctx)["state"] == "SUCCEEDED"
    assert store.mlmd.get_context_by_type_and_name("system.Pipeline", "kubetfx-training") is not None
    executions = _by_task(store, run_id)
    assert set(executions) == {
        *TASKS,
        "data-fingerprint",
        "model-resolver",
        "evaluator",
        "serving-check",
        "pusher",
        "model-card",
    }
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
    assert f"models trained on it: model artifact {model.id} ({model.uri})" in downstream.stdout
    assert f"examples followed: artifact {artifact.id} ({artifact.uri})" in downstream.stdout
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
    # Asked twice, lineage and the audit give the same text (structs come back in any order).
    assert cli("lineage", "model", "penguins:1").stdout == served.stdout
    record = cli("audit", "penguins:1")
    assert record.returncode == 0, record.stderr
    assert cli("audit", "penguins:1").stdout == record.stdout
    # The record of the push is the evaluation that gated it (the first run's, with no
    # baseline), not the second run's re-evaluation of the served model against itself.
    evaluation = record.stdout.split("\n## Evaluation\n")[1].split("\n## ")[0]
    assert f"| execution | {executions['evaluator'].id} |" in evaluation, record.stdout
    assert "no baseline model: only the absolute thresholds apply" in record.stdout
    assert not re.search(r"\d\.\d*[1-9]\d{4}", record.stdout), "numbers rounded to 4 significant digits"

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
    # A long path: the summary names the file in full wherever the checkout or data is.
    data = workdir / ("a-folder-with-a-long-name-" * 8) / "ragged.csv"
    data.parent.mkdir()
    data.write_text("a,b\n1,2\n3,4,5\n")
    result = cli("run", PIPELINE, "--param", f"input_uri={data}")
    assert result.returncode == 1
    assert f"{data}:3: row has 3 fields but the header has 2" in result.stdout
    shown = cli("runs", "show", _run_id(result.stdout))
    assert f"{data}:3: row has 3 fields but the header has 2" in shown.stdout, "errors are shown in full"
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


@component
def emit(value: int) -> int:
    return value


@component
def fail_with(message: str) -> str:
    raise ValueError(message)


@component
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="states")
def states(message: str = ""):
    first = emit(value=1)
    with dsl.If(first.output == 2):
        echo(text="never")
    failing = fail_with(message=message)
    echo(text=failing.output)


def test_summary_and_runs_show_use_one_vocabulary_and_one_timing(workdir: Path, cli, compile_to) -> None:
    message = "a long reason " * 12 + "END-OF-REASON"
    result = cli("run", str(compile_to(states)), "--param", f"message={message}", "--no-warm")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _rows(result.stdout)
    assert summary["emit"][0] == "SUCCEEDED" and summary["condition-1"][0] == "SKIPPED"
    assert summary["fail-with"][0] == "FAILED" and summary["echo-2"][0] == "NOT_RUN"
    shown = cli("runs", "show", _run_id(result.stdout))
    assert shown.returncode == 0, shown.stderr
    recorded = _rows(shown.stdout, show=True)
    assert set(recorded) == {"emit", "condition-1", "fail-with", "echo-2"}
    assert recorded == {task: summary[task] for task in recorded}
    assert re.search(r"^fail-with\s+FAILED\s+\d+\.\ds\s", result.stdout, re.MULTILINE), "timed in both"
    # The reason in full in both views, not cut to a width.
    for stdout in (result.stdout, shown.stdout):
        line = next(line for line in stdout.splitlines() if "fail-with " in line and "FAILED" in line)
        assert "END-OF-REASON" in line, line


def test_read_only_commands_never_create_a_store(workdir: Path, cli) -> None:
    mistyped = workdir / "mistyped" / "folder" / "mlmd.sqlite"
    for args in (
        ("runs",),
        ("runs", "show", "some-run"),
        ("drift", "kubetfx-training"),
        ("lineage", "model", "1"),
        ("lineage", "dataset", "span=0"),
        ("lineage", "pushes"),
        ("audit", "penguins:1"),
    ):
        result = cli(*args, "--metadata", f"sqlite:///{mistyped}")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"no metadata store at sqlite:///{mistyped}" in result.stderr, result.stderr
        assert "does not exist" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (workdir / "mistyped").exists(), "nothing may be created"
    missing_file = cli("runs", "--metadata", f"sqlite:///{workdir}/typo.sqlite")
    assert missing_file.returncode == 2 and f"no file typo.sqlite in {workdir}" in missing_file.stderr
    assert not (workdir / "typo.sqlite").exists()


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
    missing = cli("runs", "show", "no-such-run")  # no run has created the store yet
    assert missing.returncode == 2 and "no metadata store at" in missing.stderr


def test_read_only_commands_never_create_a_mysql_store(
    workdir: Path, cli, mysql_url: str, mariadb: dict
) -> None:
    import subprocess

    result = cli("runs", "--metadata", mysql_url)
    assert result.returncode == 2, result.stdout + result.stderr
    database = mysql_url.rsplit("/", 1)[1]
    assert f"database '{database}' holds no ML Metadata tables" in result.stderr
    assert mariadb["password"] not in result.stderr
    listed = subprocess.run(
        [
            mariadb["client"],
            "-S",
            mariadb["socket"],
            "-u",
            "root",
            "-N",
            "-e",
            f"SHOW DATABASES LIKE '{database}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "", "no database may be created"
    connect(mysql_url)  # what a run does first: create the store
    created = cli("runs", "--metadata", mysql_url)
    assert created.returncode == 0 and "no runs in" in created.stdout, created.stderr
