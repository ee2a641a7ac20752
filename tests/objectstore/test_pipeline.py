"""The reference pipeline in object-store mode (``--pipeline-root minio://...``), run as a
Kubeflow cluster runs it: every artifact in the object store, every task in its own folder
with the launcher's local paths, nothing shared on local disk.

The object store is a stand-in: moto's S3 server on loopback (see conftest.py) in place of
the cluster's MinIO, reached through s3fs exactly as MinIO would be. It does not prove
MinIO's own behaviour or the cluster's credentials Secret.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import storage
from kubetfx.lineage.record import FINGERPRINT_KEY, props
from kubetfx.lineage.store import connect
from kubetfx.local import run_pipeline

REPO = Path(__file__).resolve().parents[2]
TRAINING = str(REPO / "pipelines/training/pipeline.yaml")


def _states(result) -> dict[str, str]:
    return {t.name: t.state for t in result.tasks}


def _artifacts(store, run_id: str) -> list[pb.Artifact]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return list(store.mlmd.get_artifacts_by_context(ctx.id))


def _paths_under(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*")]


@pytest.fixture
def pod_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runner's temporary folder (where each task's own folder is made)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.slow
def test_training_twice_in_an_object_store(s3_env: str, workdir: Path, pod_tmp: Path, monkeypatch) -> None:
    root = f"minio://{s3_env}/v2/artifacts"
    serving = f"s3://{s3_env}/serving"
    monkeypatch.setenv("KUBETFX_PUSH_ROOT", serving)
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")

    first = run_pipeline(TRAINING, params={"epochs": 2}, pipeline_root=root)
    assert first.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in first.tasks]
    # The backend's task names: no "condition-1/" in front of the pusher.
    assert _states(first)["pusher"] == "SUCCEEDED"
    assert not any("/" in name for name in _states(first))
    assert first.task("model-resolver").params["found"] is False
    assert first.task("pusher").params["version"] == 1
    assert first.pipeline_root == f"{root}/kubetfx-training/{first.run_id}"

    # A new model: the data tasks are cached, the resolver finds the first model (by its
    # minio:// URI from lineage), the Evaluator reads that baseline from the store.
    second = run_pipeline(TRAINING, params={"epochs": 3, "max_accuracy_drop": 1.0}, pipeline_root=root)
    assert second.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in second.tasks]
    states = _states(second)
    assert states["example-gen"] == states["statistics-gen"] == states["schema-gen"] == "CACHED"
    assert states["trainer"] == "SUCCEEDED"
    resolver = second.task("model-resolver").params
    assert resolver["found"] is True
    [first_model] = first.task("trainer").artifacts["model"]
    assert resolver["model_uri"] == first_model.uri and first_model.uri.startswith(f"{root}/")
    assert second.task("evaluator").params["blessed"] is True
    assert second.task("pusher").params == {**second.task("pusher").params, "pushed": True, "version": 2}
    assert [v for v in storage.list_dir(f"{serving}/penguins") if v.isdigit()] == ["1", "2"]
    assert storage.exists(f"{serving}/penguins/2/saved_model.pb")

    # The Evaluator recorded the baseline it read from the store as an input.
    evaluator = store.mlmd.get_executions_by_id([second.task("evaluator").execution_id])[0]
    events = store.mlmd.get_events_by_execution_ids([evaluator.id])
    inputs = {e.path.steps[0].key: e.artifact_id for e in events if e.type == pb.Event.INPUT}
    assert inputs["baseline_model"] == first_model.id

    # Every artifact lives in the object store, fingerprinted, and is really there.
    for run in (first, second):
        for artifact in _artifacts(store, run.run_id):
            assert artifact.uri.startswith(f"{root}/kubetfx-training/"), artifact.uri
            assert storage.exists(artifact.uri) or not props(artifact).get(FINGERPRINT_KEY)
        produced = [a for a in _artifacts(store, run.run_id) if run.run_id in a.uri]
        assert produced and all(props(a).get(FINGERPRINT_KEY) for a in produced if "model" in a.uri)

    # Nothing of the runs is on local disk: no pipeline root folder, no task folder left.
    assert not [p for p in _paths_under(workdir) if "mlpipeline" in p or "minio" in p]
    assert os.listdir(pod_tmp) == []
    logs = [p for p in _paths_under(workdir) if first.run_id in p or second.run_id in p]
    assert logs and all(Path(p).is_dir() or p.endswith(".log") for p in logs)


CONTINUOUS = str(REPO / "pipelines/continuous_training/pipeline.yaml")


def _write_span(landing: str, span: int, frame) -> None:
    storage.write_bytes(f"{landing}/span-{span}/penguins.csv", frame.to_csv(index=False).encode())


@pytest.mark.slow
def test_continuous_training_unchanged_and_drifted_data_in_an_object_store(
    s3_env: str, workdir: Path, pod_tmp: Path, monkeypatch
) -> None:
    import pandas as pd

    from kubetfx.fingerprint import local_path

    root = f"s3://{s3_env}/pipeline-root"
    monkeypatch.setenv("KUBETFX_PUSH_ROOT", f"s3://{s3_env}/serving")
    # The data lands in the object store too, one folder per span.
    data = f"minio://{s3_env}/landing"
    penguins = pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)
    params = {"input_uri": f"{data}/span-{{SPAN}}/penguins.csv", "epochs": 3}

    _write_span(data, 1, penguins)
    first = run_pipeline(CONTINUOUS, params=params, pipeline_root=root)
    assert first.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in first.tasks]
    assert first.task("data-change-check").params["changed"] is True
    assert first.task("pusher").params["pushed"] is True

    # The same data again: data_change_check finds the run that trained on it in lineage.
    same = run_pipeline(CONTINUOUS, params=params, pipeline_root=root)
    assert same.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in same.tasks]
    check = same.task("data-change-check").params
    assert check["changed"] is False and check["previous_run"] == first.run_id
    assert same.task("example-gen").state == "CACHED"  # the store's data, unchanged
    assert "trainer" not in {t.name for t in same.tasks if t.state == "SUCCEEDED"}

    # A drifted span: the validator measures drift against span 1's statistics, which it
    # reads from the object store by the URI lineage recorded, and stops the run.
    drifted = penguins.copy()
    mass = pd.to_numeric(drifted["body_mass_g"], errors="coerce")
    drifted["body_mass_g"] = (mass + 2500).clip(upper=6999).astype("Int64").astype(str).replace("<NA>", "NA")
    _write_span(data, 2, drifted)
    third = run_pipeline(CONTINUOUS, params=params, pipeline_root=root)
    assert third.state == "FAILED"
    assert third.task("example-gen").state == "SUCCEEDED" and third.task("example-gen").params["span"] == 2
    validator = third.task("example-validator")
    assert validator.state == "FAILED", validator.message
    assert "body_mass_g" in validator.message and "Jensen-Shannon" in validator.message, validator.message
    assert third.task("trainer").state == "NOT_RUN"
    assert os.listdir(pod_tmp) == []
