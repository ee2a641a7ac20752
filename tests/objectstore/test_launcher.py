"""Where the local runner now behaves as the KFP backend does: retry backoff, constant
placeholders replaced on an exact match only, the launcher's executor-logs output left to
the launcher, and what object-store mode refuses (what a launcher could not do either).

The object store is a stand-in: moto's S3 server on loopback (see conftest.py)."""

from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset

from kubetfx.lineage.record import output_records
from kubetfx.local import run_pipeline
from kubetfx.local.dag import retry_delay


def test_retry_backoff_follows_the_policy() -> None:
    policy = {"maxRetryCount": 4, "backoffDuration": "2s", "backoffFactor": 3, "backoffMaxDuration": "10s"}
    assert [retry_delay(policy, n) for n in (1, 2, 3)] == [2.0, 6.0, 10.0]
    # The compiler's default (set_retry without a backoff): retry at once.
    assert retry_delay({"maxRetryCount": 2, "backoffDuration": "0s", "backoffFactor": 2.0}, 1) == 0.0
    assert retry_delay({"maxRetryCount": 1}, 1) == 0.0


def test_executor_logs_are_not_a_task_output(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"x")
    executor_input = {
        "outputs": {
            "artifacts": {
                "model": {
                    "artifacts": [
                        {"name": "model", "uri": str(model), "type": {"schemaTitle": "system.Model"}}
                    ]
                },
                "executor-logs": {
                    "artifacts": [{"name": "executor-logs", "uri": str(tmp_path / "logs"), "type": {}}]
                },
            }
        }
    }
    assert set(output_records(executor_input, {}, {})) == {"model"}


@dsl.component
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="placeholders")
def placeholders():
    echo(text=dsl.PIPELINE_TASK_NAME_PLACEHOLDER).set_display_name("exact")
    echo(text=f"task {dsl.PIPELINE_TASK_NAME_PLACEHOLDER}").set_caching_options(False)


def test_placeholders_are_replaced_on_an_exact_match_only(workdir: Path, compile_to) -> None:
    result = run_pipeline(compile_to(placeholders), warm=False)
    assert result.state == "SUCCEEDED", [(t.name, t.message) for t in result.tasks]
    outputs = sorted(t.params["Output"] for t in result.tasks)
    assert outputs == ["echo", "task {{$.pipeline_task_name}}"]


@dsl.pipeline(name="not-in-a-cluster")
def not_in_a_cluster(data_uri: str = ""):
    dsl.importer(artifact_uri=data_uri, artifact_class=Dataset)
    echo(text="plain")


def test_object_store_mode_refuses_what_a_launcher_cannot_do(
    s3_env: str, workdir: Path, compile_to, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    result = run_pipeline(
        compile_to(not_in_a_cluster),
        params={"data_uri": str(data)},
        pipeline_root=f"s3://{s3_env}/root",
        warm=False,
    )
    assert result.state == "FAILED"
    states = {t.name: (t.state, t.message) for t in result.tasks}
    state, message = states["importer"]
    assert state == "FAILED" and "not an object-store URI" in message and str(data) in message
    state, message = states["echo"]
    assert state == "FAILED" and "plain KFP command" in message
    assert not (workdir / "s3:").exists() and not Path("/s3").exists()
