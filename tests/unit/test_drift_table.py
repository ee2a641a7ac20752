"""`kubetfx drift`'s table from lineage: a validation that failed on its findings is a point
marked failed; one that failed before measuring is listed as having no distances."""

from __future__ import annotations

from pathlib import Path

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import ANOMALIES, TYPE_KEY
from kubetfx.lineage import record
from kubetfx.lineage.record import ArtifactRecord, Identity
from kubetfx.lineage.store import Store, connect
from kubetfx.lineage.summaries import drift_table

PIPELINE = "ct"


def _validate(store: Store, run: str, distance: float | None, state: int) -> None:
    identity = Identity(pipeline_name=PIPELINE, run_id=run, task_name="example-validator")
    execution = record.start_execution(store, identity, params={}, inputs={})
    outputs = {}
    if distance is not None:
        meta = {
            TYPE_KEY: ANOMALIES,
            "drift_distances": {"body_mass_g": distance},
            "drift_thresholds": {"body_mass_g": 0.3},
            "span": 2,
            "baseline_span": 1,
        }
        outputs = {
            "anomalies": [ArtifactRecord("anomalies", f"/tmp/{run}/anomalies", "system.Artifact", meta)]
        }
    if state == pb.Execution.FAILED and not outputs:
        record.fail_execution(store, execution, "bad input")
    else:
        record.finish_execution(store, identity, execution, outputs=outputs, output_params={}, state=state)


def test_failed_validations_with_and_without_distances(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    _validate(store, "r1", 0.01, pb.Execution.COMPLETE)
    _validate(store, "r2", 0.8, pb.Execution.FAILED)  # drift over the threshold stopped the run
    _validate(store, "r3", None, pb.Execution.FAILED)  # failed before measuring anything
    table = drift_table(store, PIPELINE, last=8)
    assert [p.run_id for p in table.points] == ["r1", "r2"]
    assert table.failed_points == {1}
    assert [f.run_id for f in table.failed] == ["r3"]
    [row] = table.rows
    assert row.feature == "body_mass_g" and row.distances == [0.01, 0.8]
    assert not row.over(0) and row.over(1)
