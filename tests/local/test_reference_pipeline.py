"""The reference pipeline through the CLI, as a user runs it, and the lineage it leaves."""

from __future__ import annotations

import shutil
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")


def _run_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Run "))
    return line.split()[1]


def test_cli_run_summary_cache_and_lineage(workdir: Path, cli) -> None:
    first = cli("run", PIPELINE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "example-gen  SUCCEEDED" in first.stdout
    assert "Lineage:  sqlite:///" in first.stdout and "kubetfx runs show" in first.stdout
    run_id = _run_id(first.stdout)

    second = cli("run", PIPELINE)
    assert second.returncode == 0
    assert "example-gen  CACHED" in second.stdout

    listed = cli("runs")
    assert run_id in listed.stdout and "SUCCEEDED" in listed.stdout
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0
    assert "example-gen  COMPLETE" in shown.stdout and "system.Dataset" in shown.stdout

    # The lineage follows the KFP backend's layout.
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    run_ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    assert run_ctx is not None and props(run_ctx)["state"] == "SUCCEEDED"
    assert store.mlmd.get_context_by_type_and_name("system.Pipeline", "kubetfx-training") is not None
    [execution] = store.mlmd.get_executions_by_context(run_ctx.id)
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
    # The cached run's execution points at the first one and reuses its artifact.
    cached_run = store.mlmd.get_context_by_type_and_name("system.PipelineRun", _run_id(second.stdout))
    [cached] = store.mlmd.get_executions_by_context(cached_run.id)
    assert cached.last_known_state == pb.Execution.CACHED
    assert props(cached)["cached_execution_id"] == str(execution.id)
    [cached_event] = store.mlmd.get_events_by_execution_ids([cached.id])
    assert cached_event.artifact_id == artifact.id


def test_changed_data_at_the_same_path_and_deleted_outputs_miss_the_cache(workdir: Path, cli) -> None:
    data = workdir / "data.csv"
    source = local_path("pkg://palmerpenguins/data/penguins.csv")
    shutil.copy(source, data)
    args = ("run", PIPELINE, "--param", f"input_uri={data}")
    assert cli(*args).returncode == 0
    assert "CACHED" in cli(*args).stdout

    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-10]) + "\n")  # same path, different content
    changed = cli(*args)
    assert "example-gen  SUCCEEDED" in changed.stdout, changed.stdout
    again = cli(*args)
    assert "example-gen  CACHED" in again.stdout

    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    run_ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", _run_id(again.stdout))
    [execution] = store.mlmd.get_executions_by_context(run_ctx.id)
    [event] = store.mlmd.get_events_by_execution_ids([execution.id])
    [artifact] = store.mlmd.get_artifacts_by_id([event.artifact_id])
    assert props(artifact)["row_count_train"] + props(artifact)["row_count_eval"] == 334
    shutil.rmtree(artifact.uri)  # outputs deleted since: the hit must not be used
    rebuilt = cli(*args)
    assert "example-gen  SUCCEEDED" in rebuilt.stdout, rebuilt.stdout
    assert "example-gen  SUCCEEDED" in cli(*args, "--no-cache").stdout


def test_bad_input_fails_the_run_with_the_file_and_line_and_publishes_nothing(workdir: Path, cli) -> None:
    data = workdir / "ragged.csv"
    data.write_text("a,b\n1,2\n3,4,5\n")
    result = cli("run", PIPELINE, "--param", f"input_uri={data}")
    assert result.returncode == 1
    assert f"{data}:3: row has 3 fields but the header has 2" in result.stdout
    assert not list(workdir.glob("root/**/examples")), "no output may be published on failure"
    assert not list(workdir.glob("root/**/examples.partial-*")), "staging must be cleaned up"
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    [execution] = store.mlmd.get_executions()
    assert execution.last_known_state == pb.Execution.FAILED
    assert "row has 3 fields" in props(execution)["error"]
    assert store.mlmd.get_artifacts() == []


def test_cli_errors_are_one_line(workdir: Path, cli) -> None:
    bad_type = cli("run", PIPELINE, "--param", "splits")
    assert bad_type.returncode == 2 and "is not NAME=VALUE" in bad_type.stderr
    unknown = cli("run", PIPELINE, "--param", "nope=1")
    assert unknown.returncode == 2 and "unknown parameter 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    not_pipeline = workdir / "x.yaml"
    not_pipeline.write_text("a: 1\n")
    result = cli("run", str(not_pipeline))
    assert result.returncode == 2 and "not a compiled KFP pipeline" in result.stderr
    missing = cli("runs", "show", "no-such-run")
    assert missing.returncode == 2 and "not found" in missing.stderr
