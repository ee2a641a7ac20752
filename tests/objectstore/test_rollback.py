"""Rollback, audit and lineage of models pushed in object-store mode: two pipeline runs push
versions 1 and 2 to an ``s3://`` push root, ``kubetfx rollback --to 1`` republishes version 1
in the object store as version 3, and the model resolver's next baseline is model 1.

The object store is a stand-in: moto's S3 server on loopback (see conftest.py) in place of
the cluster's MinIO, reached through s3fs exactly as MinIO would be.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kubetfx import storage
from kubetfx.lineage.baseline import resolve_baseline
from kubetfx.lineage.store import connect
from kubetfx.local import run_pipeline

REPO = Path(__file__).resolve().parents[2]
TRAINING = str(REPO / "pipelines/training/pipeline.yaml")


def _tree(uri: str) -> dict[str, bytes]:
    return {rel: storage.read_bytes(f"{uri}/{rel}") for rel in storage.files(uri)}


@pytest.mark.slow
def test_rollback_audit_and_lineage_in_an_object_store(
    s3_env: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    root = f"minio://{s3_env}/v2/artifacts"
    serving = f"s3://{s3_env}/serving"
    monkeypatch.setenv("KUBETFX_PUSH_ROOT", serving)
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")

    first = run_pipeline(TRAINING, params={"epochs": 2}, pipeline_root=root)
    assert first.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in first.tasks]
    second = run_pipeline(TRAINING, params={"epochs": 3, "max_accuracy_drop": 1.0}, pipeline_root=root)
    assert second.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in second.tasks]
    assert second.task("pusher").params["version"] == 2
    [model1] = first.task("trainer").artifacts["model"]
    [model2] = second.task("trainer").artifacts["model"]
    assert model1.uri.startswith(f"{root}/") and model2.uri.startswith(f"{root}/")
    assert resolve_baseline(store, "penguins", "kubetfx-training").model_id == model2.id

    # The audit and the lineage of a model pushed in object-store mode name its remote URIs.
    audit = cli("audit", "penguins:2")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    text = audit.stdout
    assert "# Audit: penguins version 2" in text, text
    assert f"{serving}/penguins/2" in text, text
    assert model2.uri in text, text
    assert f"| model artifact | {model2.id} |" in text, text
    assert "| decision | BLESSED |" in text, text
    lineage = cli("lineage", "model", "penguins:1")
    assert lineage.returncode == 0, lineage.stdout + lineage.stderr
    assert model1.uri in lineage.stdout, lineage.stdout
    [examples] = first.task("example-gen").artifacts["examples"]
    assert examples.uri.startswith(f"{root}/") and examples.uri in lineage.stdout, lineage.stdout

    # Roll back to version 1: republished in the object store as version 3, same files.
    rolled = cli("rollback", "penguins", "--to", "1")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"version 3 at {serving}/penguins/3" in rolled.stdout, rolled.stdout
    assert [v for v in storage.list_dir(f"{serving}/penguins") if v.isdigit()] == ["1", "2", "3"]
    one, two, three = (_tree(f"{serving}/penguins/{v}") for v in (1, 2, 3))
    assert "saved_model.pb" in three and three == one != two
    assert not [v for v in storage.list_dir(f"{serving}/penguins") if "partial" in v]

    # The next baseline is model 1, and the audit of version 3 says it is a rollback.
    baseline = resolve_baseline(store, "penguins", "kubetfx-training")
    assert baseline.model_id == model1.id and "rollback" in baseline.detail
    assert baseline.model_uri == model1.uri
    again = cli("audit", "penguins:3")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rollback to version 1" in again.stdout and f"{serving}/penguins/3" in again.stdout, again.stdout
    assert model1.uri in again.stdout, again.stdout
