"""The gRPC metadata-store path (a cluster's metadata-grpc-service, after a port-forward).

No ML Metadata gRPC server runs here (it ships only as a container image), so this test
serves ml-metadata's own gRPC stubs from a STAND-IN: every call is handed to a real
SQLite-backed MetadataStore. The kubetfx side is the real client path.
"""

import re
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2, metadata_store_service_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")


def _standin_servicer(store: metadata_store.MetadataStore):
    """A MetadataStoreService whose every method delegates to ``store`` (stand-in)."""
    service = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
    lock = threading.Lock()

    def make(method):
        response_class = getattr(metadata_store_service_pb2, method.output_type.name)

        def handler(self, request, context):
            response = response_class()
            try:
                with lock:
                    store._call(method.name, request, response)
            except mlmd_errors.StatusError as err:
                code = getattr(
                    grpc.StatusCode, type(err).__name__.replace("Error", "").upper(), grpc.StatusCode.UNKNOWN
                )
                context.abort(code, str(err))
            return response

        return handler

    methods = {m.name: make(m) for m in service.methods}
    return type(
        "StandInMetadataStore", (metadata_store_service_pb2_grpc.MetadataStoreServiceServicer,), methods
    )()


@pytest.fixture
def grpc_url(tmp_path: Path):
    config = metadata_store_pb2.ConnectionConfig(
        sqlite=metadata_store_pb2.SqliteMetadataSourceConfig(
            filename_uri=str(tmp_path / "behind-grpc.sqlite"),
            connection_mode=metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE,
        )
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    metadata_store_service_pb2_grpc.add_MetadataStoreServiceServicer_to_server(
        _standin_servicer(metadata_store.MetadataStore(config)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_pipeline_lineage_and_queries_through_grpc(workdir: Path, cli, grpc_url: str) -> None:
    env = {"KUBETFX_METADATA": grpc_url}
    first = cli("run", PIPELINE, "--param", "epochs=2", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Lineage:  {grpc_url}" in first.stdout
    second = cli("run", PIPELINE, "--param", "epochs=2", env=env)
    assert re.search(r"^trainer\s+CACHED", second.stdout, re.MULTILINE), second.stdout
    runs = cli("runs", env=env)
    assert runs.stdout.count("SUCCEEDED") == 2
    uri = next(
        line.split()[-1]
        for line in cli("runs", "show", first.stdout.split("Run ")[1].split()[0], env=env).stdout.splitlines()
        if line.startswith("trainer") and "system.Model" in line
    )
    upstream = cli("lineage", "model", uri, env=env)
    assert upstream.returncode == 0 and "example-gen (execution" in upstream.stdout
    audit = cli("audit", "penguins:1", "--format", "html", env=env)
    assert audit.returncode == 0 and "BLESSED" in audit.stdout and "island=Dream" in audit.stdout


def test_unreachable_grpc_store_is_a_one_line_error(workdir: Path, cli) -> None:
    result = cli("runs", "--metadata", "grpc://127.0.0.1:1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (
        "cannot reach metadata service grpc://127.0.0.1:1" in result.stderr
        and "port-forward" in result.stderr
    )
