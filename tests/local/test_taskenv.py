"""The task environment: one typed record, read and written the same way everywhere."""

from pathlib import Path

from kubetfx import process, settings, storage, taskenv
from kubetfx.identity import ENV_PIPELINE, ENV_RUN, ENV_TASK
from kubetfx.local import warm
from kubetfx.local.pod import Pod
from kubetfx.taskenv import TaskEnv


def test_round_trip_and_unset_fields() -> None:
    env = TaskEnv(
        metadata="sqlite:///m.sqlite",
        pipeline_name="p",
        run_id="r",
        task_name="t",
        cache_key="k",
        die_with_runner=True,
        runner_pid=42,
        execution_id=7,
    )
    written = env.to_env()
    assert written == {
        "KUBETFX_METADATA": "sqlite:///m.sqlite",
        ENV_PIPELINE: "p",
        ENV_RUN: "r",
        ENV_TASK: "t",
        "KUBETFX_CACHE_KEY": "k",
        "KUBETFX_DIE_WITH_RUNNER": "1",
        "KUBETFX_RUNNER_PID": "42",
        "KUBETFX_EXECUTION_ID": "7",
    }
    assert TaskEnv.from_env(written) == env
    assert TaskEnv.from_env({}) == TaskEnv()
    assert TaskEnv.from_env({"KUBETFX_RUNNER_PID": "x", "KUBETFX_DIE_WITH_RUNNER": "0"}) == TaskEnv()


def test_the_names_are_the_settings_names() -> None:
    assert taskenv.METADATA == settings.METADATA_ENV
    assert taskenv.METADATA_PASSWORD == settings.METADATA_PASSWORD_ENV
    assert taskenv.PIPELINE_ROOT == settings.PIPELINE_ROOT_ENV
    assert taskenv.PUSH_ROOT == settings.PUSH_ROOT_ENV
    assert taskenv.RUNNER_PID == process.ENV_RUNNER_PID
    assert taskenv.MOUNT_ROOT == storage.MOUNT_ROOT_ENV
    assert taskenv.S3_ENDPOINT == storage.ENDPOINT_ENV
    assert taskenv.AWS_ENDPOINT == storage.AWS_ENDPOINT_ENV
    # What differs per task never names another warm worker.
    assert taskenv.PER_TASK <= warm.VOLATILE_ENV


def test_a_pod_gets_a_pods_environment(tmp_path: Path) -> None:
    runner_env = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "KUBETFX_METADATA": "sqlite:///other.sqlite",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "KUBETFX_S3_ENDPOINT": "http://127.0.0.1:9000",
        "TEAM_TOKEN": "mapped",
        "UNRELATED": "left out",
        "CUDA_VISIBLE_DEVICES": "0",
    }
    platform = {
        "secretAsEnv": [{"secretName": "team", "keyToEnv": [{"secretKey": "token", "envVar": "TEAM_TOKEN"}]}],
        "fieldPathAsEnv": [{"name": "KUBETFX_RUN_ID", "fieldPath": "metadata.labels['pipeline/runid']"}],
    }
    container = {"env": [{"name": "KUBETFX_PIPELINE_NAME", "value": "compiled-in"}]}
    pod = Pod("trainer")
    try:
        task = TaskEnv(metadata="sqlite:///m.sqlite", run_id="run-1", task_name="trainer", tmpdir=pod.tmp)
        env = pod.environment(task, container, platform, source=runner_env)
    finally:
        pod.remove()
    assert "UNRELATED" not in env and "CUDA_VISIBLE_DEVICES" not in env
    assert env["PATH"].endswith(":/usr/bin") and env["HOME"] == "/home/u"
    assert env["KUBETFX_METADATA"] == "sqlite:///m.sqlite"  # the runner's settings win
    assert env["AWS_ACCESS_KEY_ID"] == "key" and env["KUBETFX_S3_ENDPOINT"] == "http://127.0.0.1:9000"
    assert env["TEAM_TOKEN"] == "mapped"
    assert env["KUBETFX_RUN_ID"] == "run-1" and env["KUBETFX_PIPELINE_NAME"] == "compiled-in"
    assert env["TMPDIR"] == pod.tmp


def test_a_relative_sqlite_url_names_one_store_for_the_runner_and_its_tasks(
    workdir: Path, compile_to, monkeypatch
) -> None:
    """Tasks run in folders of their own: a task that opens the store (the resolver, the
    model card) must open the runner's file, not create one relative to its own folder."""
    from kfp import dsl

    from kubetfx.dsl import component

    @component
    def open_the_store() -> int:
        from kubetfx.task import lineage_store

        store = lineage_store()
        found = len(store.mlmd.get_executions())  # the runner recorded this task before it ran
        if not found:
            raise ValueError(f"the task opened an empty store: {store}")
        return found

    @dsl.pipeline(name="store-path")
    def store_path():
        open_the_store()

    path = compile_to(store_path)
    monkeypatch.setenv("KUBETFX_METADATA", "sqlite:///relative/mlmd.sqlite")
    from tests.conftest import run_cli

    proc = run_cli("run", str(path), "--no-cache", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (workdir / "relative" / "mlmd.sqlite").exists()
    assert [p.relative_to(workdir) for p in workdir.rglob("mlmd.sqlite")] == [Path("relative/mlmd.sqlite")]
