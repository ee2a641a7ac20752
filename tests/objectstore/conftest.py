"""An S3 server on loopback for the object-store tests: moto's, standing in for MinIO/S3.

moto implements the S3 API in memory (buckets, objects, listing, multipart uploads) behind
a real HTTP server, so s3fs and botocore talk to it exactly as to MinIO or S3. What it does
not prove: MinIO's or AWS's own behaviour (consistency under load, permissions and policies,
TLS, the cluster's Secret holding the credentials).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BUCKET = "mlpipeline"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The environment a task gets in a cluster (endpoint and credentials), pointing at the
    test server; and a fresh bucket. Returns the bucket name. Temporary folders (fetched
    copies) go under the test's own folder."""
    import tempfile

    (tmp_path / "fetched").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "fetched"))
    monkeypatch.setenv("KUBETFX_S3_ENDPOINT", s3_server)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "minio")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "minio123")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    import boto3

    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    """A small folder: two files, one in a subfolder."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(3000))
    return root
