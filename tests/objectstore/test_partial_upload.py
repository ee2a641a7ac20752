"""An artifact recorded but not (fully) uploaded is never used as a baseline.

In a KFP pod the task records its outputs in lineage when its command ends; the launcher
uploads them afterwards. A launcher that fails or a pod that dies in between leaves a LIVE
artifact in kubetfx's lineage whose files are not all in the object store. Here a task
writes its outputs at the launcher's local paths and records them through the same
functions ``kubetfx.task`` uses; the test then uploads all, part or none of them to the S3
stand-in, and the drift and model baselines must pass over the incomplete ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubetfx import storage
from kubetfx.artifacts.kinds import BLESSING, MODEL, STATISTICS, TYPE_KEY
from kubetfx.lineage import record
from kubetfx.lineage.baseline import resolve_baseline
from kubetfx.lineage.query import previous_statistics
from kubetfx.lineage.record import ArtifactRecord, Identity, content_complete, props
from kubetfx.lineage.store import Store, connect

PIPELINE = "partial-upload"
SOURCE = "s3://data/penguins.csv"


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_env: str) -> tuple[Store, str]:
    """A store, and the launcher's mount root under the test's folder; the bucket name."""
    monkeypatch.setenv(storage.MOUNT_ROOT_ENV, str(tmp_path / "pod"))
    return connect(f"sqlite:///{tmp_path}/mlmd.sqlite"), s3_env


def _write(uri: str, files: dict[str, int]) -> None:
    """The task's side: its output files at the launcher's local path for ``uri``."""
    local = storage.launcher_path(uri)
    assert local is not None
    for name, size in files.items():
        path = Path(local) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def _upload(uri: str, only: list[str] | None = None) -> None:
    """The launcher's side: upload all of the output's files, or only some of them."""
    local = Path(storage.launcher_path(uri) or "")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        name = path.relative_to(local).as_posix()
        if only is None or name in only:
            storage.write_bytes(f"{uri}/{name}", path.read_bytes())


def _task(store: Store, run: str, task: str, inputs: dict, outputs: dict) -> dict[str, list[int]]:
    identity = Identity(pipeline_name=PIPELINE, run_id=run, task_name=task)
    execution = record.start_execution(store, identity, params={}, inputs=inputs)
    return record.finish_execution(store, identity, execution, outputs=outputs, output_params={})


STATS_FILES = {"Split-train/FeatureStats.pb": 2000, "Split-eval/FeatureStats.pb": 1500}


def _statistics(store: Store, bucket: str, run: str, span: int) -> str:
    uri = f"s3://{bucket}/{run}/statistics-gen/statistics"
    _write(uri, STATS_FILES)
    metadata = {TYPE_KEY: STATISTICS, "input_uri": SOURCE, "span": span}
    _task(
        store,
        run,
        "statistics-gen",
        {},
        {"statistics": [ArtifactRecord("statistics", uri, "system.Artifact", metadata)]},
    )
    return uri


def test_outputs_record_what_the_task_wrote(pod: tuple[Store, str]) -> None:
    store, bucket = pod
    uri = _statistics(store, bucket, "r1", span=1)
    artifact = record.find_artifact(store, uri)
    assert artifact is not None
    info = props(artifact)
    assert (info[record.CONTENT_FILES], info[record.CONTENT_BYTES]) == (2, 3500)
    assert not content_complete(artifact)  # nothing uploaded yet
    _upload(uri, only=["Split-train/FeatureStats.pb"])
    assert not content_complete(artifact)
    _upload(uri)
    assert content_complete(artifact)


def test_drift_baseline_passes_over_an_unfinished_upload(pod: tuple[Store, str]) -> None:
    store, bucket = pod
    first = _statistics(store, bucket, "r1", span=1)
    _upload(first)
    second = _statistics(store, bucket, "r2", span=2)
    _upload(second, only=["Split-train/FeatureStats.pb"])  # the launcher died half-way
    current = _statistics(store, bucket, "r3", span=3)

    baseline = previous_statistics(store, PIPELINE, current, run_id="r3")
    assert baseline is not None
    assert (baseline.uri, baseline.run_id, baseline.span) == (first, "r1", 1)

    _upload(second)  # the rest arrives (or a retry uploaded it): now it is the baseline
    baseline = previous_statistics(store, PIPELINE, current, run_id="r3")
    assert baseline is not None
    assert (baseline.uri, baseline.run_id) == (second, "r2")


def test_no_complete_baseline_means_none(pod: tuple[Store, str]) -> None:
    store, bucket = pod
    _statistics(store, bucket, "r1", span=1)  # recorded, never uploaded
    current = _statistics(store, bucket, "r2", span=2)
    assert previous_statistics(store, PIPELINE, current, run_id="r2") is None


def _blessed_model(store: Store, bucket: str, run: str, upload: list[str] | None) -> int:
    model_uri = f"s3://{bucket}/{run}/trainer/model"
    _write(
        model_uri, {"Format-Serving/saved_model.pb": 4000, "Format-Serving/variables/variables.index": 300}
    )
    model = ArtifactRecord("model", model_uri, "system.Model", {TYPE_KEY: MODEL})
    [model_id] = _task(store, run, "trainer", {}, {"model": [model]})["model"]
    if upload != []:
        _upload(model_uri, only=upload)
    blessing_uri = f"s3://{bucket}/{run}/evaluator/blessing"
    _write(blessing_uri, {"BLESSED": 0})
    _upload(blessing_uri)
    blessing = ArtifactRecord(
        "blessing",
        blessing_uri,
        "system.Artifact",
        {TYPE_KEY: BLESSING, "blessed": 1, "model_name": "penguins"},
    )
    model_in = ArtifactRecord("model", model_uri, "system.Model", id=model_id)
    _task(store, run, "evaluator", {"model": [model_in]}, {"blessing": [blessing]})
    return model_id


def test_model_baseline_passes_over_an_unfinished_upload(pod: tuple[Store, str]) -> None:
    store, bucket = pod
    complete = _blessed_model(store, bucket, "r1", upload=None)
    partial = _blessed_model(store, bucket, "r2", upload=["Format-Serving/saved_model.pb"])

    baseline = resolve_baseline(store, "penguins", PIPELINE)
    assert baseline is not None
    assert baseline.model_id == complete

    _upload(f"s3://{bucket}/r2/trainer/model")
    baseline = resolve_baseline(store, "penguins", PIPELINE)
    assert baseline is not None
    assert baseline.model_id == partial
