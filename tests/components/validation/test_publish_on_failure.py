"""A failing validation publishes its finished outputs before the task fails: renamed into
place from the staging path locally, uploaded to an object store (moto's S3 server on
loopback, a stand-in: it proves the upload through kubetfx.storage, not a cluster's MinIO), and
recorded in a real ML Metadata store as outputs of the running execution."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubetfx.components.example_validator.publishing import final_uri, publish_before_failing
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import task
from kubetfx.lineage import record
from kubetfx.lineage.store import connect


def _output(path: str, uri: str, title: str, **metadata) -> SimpleNamespace:
    # What the validator reads of a KFP output artifact; KFP's own class ties path to uri
    # (s3:// maps to /s3/...), which a test outside a pod cannot write.
    return SimpleNamespace(path=path, uri=uri, schema_title=title, metadata=metadata)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """A RUNNING execution in a real store, with the environment the task wrapper sets."""
    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    store = connect(url)
    identity = record.Identity(pipeline_name="p", run_id="run-1", task_name="example-validator")
    execution_id = record.start_execution(store, identity, params={}, inputs={})
    for name, value in {
        "KUBETFX_METADATA": url,
        task.ENV_EXECUTION_ID: str(execution_id),
        task.ENV_PIPELINE: "p",
        task.ENV_RUN: "run-1",
        task.ENV_TASK: "example-validator",
    }.items():
        monkeypatch.setenv(name, value)
    yield store, execution_id


def test_local_outputs_are_renamed_into_place_and_recorded(tmp_path: Path, running) -> None:
    store, execution_id = running
    final = tmp_path / "root" / "example-validator" / "report"
    staging = f"{final}.partial-{os.getpid()}"
    assert final_uri(staging) == str(final)
    Path(staging).parent.mkdir(parents=True)
    Path(staging).write_text("<html>FAILED</html>")
    anomalies_dir = tmp_path / "root" / "example-validator" / "anomalies"
    anomalies_staging = f"{anomalies_dir}.partial-{os.getpid()}"
    Path(anomalies_staging, "Split-train").mkdir(parents=True)
    Path(anomalies_staging, "drift.json").write_text("{}")
    outputs = {
        "anomalies": _output(
            anomalies_staging,
            anomalies_staging,
            "system.Artifact",
            kubetfx_type="kubetfx.ExampleAnomalies",
            anomaly_count=2,
        ),
        "report": _output(staging, staging, "system.HTML"),
    }
    published = publish_before_failing(outputs)
    assert published == {"anomalies": str(anomalies_dir), "report": str(final)}
    assert final.read_text() == "<html>FAILED</html>" and not Path(staging).exists()
    assert (anomalies_dir / "drift.json").exists() and not Path(anomalies_staging).exists()
    [execution] = store.mlmd.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.RUNNING  # the wrapper marks it FAILED
    recorded = record.outputs_of(store, execution_id)
    assert {k: [a.uri for a in v] for k, v in recorded.items()} == {
        "anomalies": [str(anomalies_dir)],
        "report": [str(final)],
    }
    [anomalies] = recorded["anomalies"]
    assert store.mlmd.get_artifact_types_by_id([anomalies.type_id])[0].name == "kubetfx.ExampleAnomalies"
    record.fail_execution(store, execution_id, "data validation found 2 anomalies")
    assert sorted(record.outputs_of(store, execution_id)) == ["anomalies", "report"]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "stand-in",
        "AWS_SECRET_ACCESS_KEY": "stand-in",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="pipeline-root")
    yield client
    server.stop()


def test_object_store_outputs_are_uploaded_and_recorded(tmp_path: Path, running, s3) -> None:
    store, execution_id = running
    local = tmp_path / "s3-mount" / "report"
    local.parent.mkdir()
    local.write_text("<html>FAILED</html>")
    folder = tmp_path / "s3-mount" / "anomalies"
    Path(folder, "Split-train").mkdir(parents=True)
    Path(folder, "Split-train", "SchemaDiff.pb").write_bytes(b"\x01")
    uri = "s3://pipeline-root/run-1/example-validator/report"
    anomalies_uri = "s3://pipeline-root/run-1/example-validator/anomalies"
    published = publish_before_failing(
        {
            "report": _output(str(local), uri, "system.HTML"),
            "anomalies": _output(str(folder), anomalies_uri, "system.Artifact"),
        }
    )
    assert published == {"report": uri, "anomalies": anomalies_uri}
    body = s3.get_object(Bucket="pipeline-root", Key="run-1/example-validator/report")["Body"].read()
    assert body == b"<html>FAILED</html>"
    listed = s3.list_objects_v2(Bucket="pipeline-root", Prefix="run-1/example-validator/anomalies/")
    assert [o["Key"] for o in listed["Contents"]] == [
        "run-1/example-validator/anomalies/Split-train/SchemaDiff.pb"
    ]
    assert [a.uri for a in record.outputs_of(store, execution_id)["report"]] == [uri]


def test_minio_outputs_go_to_the_configured_endpoint(tmp_path: Path, running, s3) -> None:
    # KFP's minio:// URIs: the S3 protocol at the endpoint the cluster's settings name.
    store, execution_id = running
    local = tmp_path / "report.html"
    local.write_text("<html>FAILED</html>")
    uri = "minio://pipeline-root/run-2/example-validator/report.html"
    published = publish_before_failing({"report": _output(str(local), uri, "system.HTML")})
    assert published == {"report": uri}
    body = s3.get_object(Bucket="pipeline-root", Key="run-2/example-validator/report.html")["Body"].read()
    assert body == b"<html>FAILED</html>"
    assert [a.uri for a in record.outputs_of(store, execution_id)["report"]] == [uri]


def test_an_unreachable_store_is_not_recorded_as_published(
    tmp_path: Path, running, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, execution_id = running
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {
        "AWS_ACCESS_KEY_ID": "stand-in",
        "AWS_SECRET_ACCESS_KEY": "stand-in",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    local = tmp_path / "report"
    local.write_text("x")
    published = publish_before_failing(
        {"report": _output(str(local), "s3://pipeline-root/run-3/example-validator/report", "system.HTML")}
    )
    assert published == {}
    assert record.outputs_of(store, execution_id) == {}
