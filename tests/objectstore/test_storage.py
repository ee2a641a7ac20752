"""kubetfx.storage against an S3 server: s3:// and minio:// URIs, the launcher's local paths,
fingerprints of remote artifacts, and ExampleGen and SchemaGen reading from the store. (The
drift baseline and the Evaluator's baseline, read by URI from lineage: test_pipeline.py.)

The object store is a stand-in: moto's S3 server on loopback (see conftest.py), reached
through s3fs exactly as MinIO or S3 would be. It does not prove MinIO's own behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetfx import storage
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import fingerprint_path, fingerprint_uri


@pytest.mark.parametrize("scheme", ["s3", "minio"])
def test_round_trip_of_a_folder(s3_env: str, local_tree: Path, tmp_path: Path, scheme: str) -> None:
    uri = f"{scheme}://{s3_env}/v2/artifacts/run/task/examples"
    assert not storage.exists(uri)
    assert storage.upload(str(local_tree), uri) == 2
    assert storage.exists(uri) and storage.exists(uri + "/sub/b.bin")
    assert not storage.exists(uri + "/nothing")
    assert storage.list_dir(uri) == ["a.txt", "sub"]
    assert storage.files(uri) == {"a.txt": 6, "sub/b.bin": 3000}
    assert storage.read_bytes(storage.join(uri, "a.txt")) == b"alpha\n"
    assert storage.is_file(uri + "/a.txt") and not storage.is_file(uri)

    copy = storage.download(uri, str(tmp_path / "copy"))
    assert (Path(copy) / "sub" / "b.bin").read_bytes() == (local_tree / "sub" / "b.bin").read_bytes()
    # A remote fingerprint is the local one of the same files: a copy is the same data.
    assert fingerprint_uri(uri) == fingerprint_path(local_tree) == fingerprint_path(copy)
    assert fingerprint_uri(uri + "/a.txt") == fingerprint_path(local_tree / "a.txt")

    storage.write_bytes(uri + "/a.txt", b"changed\n")
    assert fingerprint_uri(uri) != fingerprint_path(local_tree)
    storage.remove(uri)
    assert not storage.exists(uri) and fingerprint_uri(uri) is None


def test_minio_and_s3_name_the_same_objects(s3_env: str) -> None:
    # minio:// is the S3 protocol at the configured endpoint.
    storage.write_bytes(f"minio://{s3_env}/k/one.txt", b"1")
    assert storage.read_bytes(f"s3://{s3_env}/k/one.txt") == b"1"


def test_missing_objects_and_bad_endpoints_are_named(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"minio://{s3_env}/no/such/model"
    with pytest.raises(storage.StorageError, match="no/such/model"):
        storage.localize(missing)
    with pytest.raises(storage.StorageError, match="no/such/model"):
        storage.download(missing, "/nonexistent-target")
    with pytest.raises(storage.StorageError, match="oops://x"):
        storage.exists("oops://x/y")


def test_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (storage.ENDPOINT_ENV, storage.AWS_ENDPOINT_ENV):
        monkeypatch.delenv(name, raising=False)
    assert (
        storage.s3_endpoint("minio") == storage.MINIO_DEFAULT_ENDPOINT == "http://minio-service.kubeflow:9000"
    )
    assert storage.s3_endpoint("s3") is None  # AWS's own
    monkeypatch.setenv(storage.AWS_ENDPOINT_ENV, "https://s3.example.com")
    assert storage.s3_endpoint("minio") == storage.s3_endpoint("s3") == "https://s3.example.com"
    monkeypatch.setenv(storage.ENDPOINT_ENV, "minio.local:9000")
    assert storage.s3_endpoint("s3") == "http://minio.local:9000"


def test_launcher_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(storage.MOUNT_ROOT_ENV, raising=False)
    pairs = {
        "minio://mlpipeline/v2/artifacts/p/r/t/model": "/minio/mlpipeline/v2/artifacts/p/r/t/model",
        "s3://bucket/key/x": "/s3/bucket/key/x",
        "gs://bucket/key": "/gcs/bucket/key",
    }
    for uri, path in pairs.items():
        assert storage.launcher_path(uri) == path
        assert storage.uri_for_launcher_path(path) == uri
    assert storage.launcher_path("/data/x") is None and storage.launcher_path("pkg://a/b") is None
    assert storage.uri_for_launcher_path("/data/x") is None
    monkeypatch.setenv(storage.MOUNT_ROOT_ENV, str(tmp_path))
    assert storage.launcher_path("s3://b/k") == f"{tmp_path}/s3/b/k"
    assert storage.uri_for_launcher_path(f"{tmp_path}/minio/b/k") == "minio://b/k"


def test_kfp_artifact_paths_follow_the_mount_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kfp import dsl
    from kfp.dsl.types import artifact_types

    saved = {
        name: getattr(artifact_types, name)
        for name in ("_GCS_LOCAL_MOUNT_PREFIX", "_MINIO_LOCAL_MOUNT_PREFIX", "_S3_LOCAL_MOUNT_PREFIX")
    }
    for name, value in saved.items():
        monkeypatch.setattr(artifact_types, name, value)
    monkeypatch.setenv(storage.MOUNT_ROOT_ENV, str(tmp_path))
    storage.apply_mount_root()
    model = dsl.Model(uri="minio://mlpipeline/p/model")
    assert model.path == f"{tmp_path}/minio/mlpipeline/p/model"
    assert model.path == storage.launcher_path(model.uri)


def test_localize_reads_the_launchers_copy_when_there_is_one(
    s3_env: str, local_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"minio://{s3_env}/models/1"
    storage.upload(str(local_tree), uri)
    pod = tmp_path / "pod"
    monkeypatch.setenv(storage.MOUNT_ROOT_ENV, str(pod))
    fetched = storage.localize(uri)  # not downloaded by a launcher: fetched now
    assert not fetched.startswith(str(pod)) and sorted(Path(fetched).rglob("*.bin"))
    mounted = storage.download(uri, storage.launcher_path(uri))
    assert storage.localize(uri) == mounted == f"{pod}/minio/{s3_env}/models/1"


def test_example_gen_reads_spans_from_an_object_store(s3_env: str, tmp_path: Path) -> None:
    from kubetfx.artifacts.tabular import resolve_input

    local = tmp_path / "data"
    for span, text in ((1, "a,b\n1,2\n"), (2, "a,b\n3,4\n5,6\n")):
        (local / f"span-{span}").mkdir(parents=True)
        (local / f"span-{span}" / "part.csv").write_text(text)
    uri = f"minio://{s3_env}/landing"
    storage.upload(str(local), uri)

    files, span = resolve_input(f"{uri}/span-{{SPAN}}/*.csv")
    assert span == 2 and [Path(f).read_text() for f in files] == ["a,b\n3,4\n5,6\n"]
    [one], _ = resolve_input(f"{uri}/span-1/part.csv")
    assert Path(one).read_text() == "a,b\n1,2\n"
    # The cache key's data fingerprint of a remote pattern is the local one of the same files,
    # and it changes when a file does.
    pattern = "span-{SPAN}/*.csv"
    before = fingerprint_uri(f"{uri}/{pattern}")
    assert before == fingerprint_uri(f"{local}/{pattern}")
    storage.write_bytes(f"{uri}/span-2/part.csv", b"a,b\n3,4\n5,7\n")
    assert fingerprint_uri(f"{uri}/{pattern}") != before
    with pytest.raises(InputDataError, match="no file matches"):
        resolve_input(f"{uri}/nothing-{{SPAN}}/*.csv")


def test_a_curated_schema_in_an_object_store(s3_env: str) -> None:
    from kubetfx.artifacts.schema import load_schema_file
    from kubetfx.fingerprint import local_path

    text = local_path("pkg://kubetfx.schemas/penguins/schema.pbtxt").read_text()
    uri = f"s3://{s3_env}/schemas/penguins/schema.pbtxt"
    storage.write_bytes(uri, text.encode())
    assert "species" in [f.name for f in load_schema_file(uri).feature]
    storage.write_bytes(uri, b"feature { name: 'x' type: NOPE }\n")
    with pytest.raises(InputDataError, match=r"schema.pbtxt:1:"):
        load_schema_file(uri)
    with pytest.raises(InputDataError, match="schema file not found"):
        load_schema_file(f"s3://{s3_env}/schemas/missing.pbtxt")
