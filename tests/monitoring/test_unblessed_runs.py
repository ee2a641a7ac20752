"""The streak behind the KubetfxModelsNotBlessed alert, read from a real ML Metadata store."""

from __future__ import annotations

from pathlib import Path

from kubetfx.artifacts.kinds import BLESSING, TYPE_KEY
from kubetfx.lineage import record
from kubetfx.lineage.query import unblessed_runs
from kubetfx.lineage.record import ArtifactRecord, Identity
from kubetfx.lineage.store import Store, connect


def _evaluate(store: Store, pipeline: str, run: str, model: str, blessed: bool) -> None:
    identity = Identity(pipeline_name=pipeline, run_id=run, task_name="evaluator")
    execution = record.start_execution(store, identity, params={}, inputs={})
    meta = {TYPE_KEY: BLESSING, "blessed": int(blessed), "model_name": model}
    blessing = ArtifactRecord("blessing", f"/tmp/{pipeline}/{run}/blessing", "system.Artifact", meta)
    record.finish_execution(store, identity, execution, outputs={"blessing": [blessing]}, output_params={})


def test_counts_the_newest_evaluations_that_did_not_bless(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    assert unblessed_runs(store, "training", "penguins") == 0  # nothing evaluated yet
    for run, blessed in [("r1", False), ("r2", True), ("r3", False), ("r4", False)]:
        _evaluate(store, "training", run, "penguins", blessed)
    # Another model and another pipeline do not count.
    _evaluate(store, "training", "r5", "other", False)
    _evaluate(store, "elsewhere", "r6", "penguins", False)
    assert unblessed_runs(store, "training", "penguins") == 2
    _evaluate(store, "training", "r7", "penguins", False)
    assert unblessed_runs(store, "training", "penguins") == 3
    assert unblessed_runs(store, "elsewhere", "penguins") == 1
    _evaluate(store, "training", "r8", "penguins", True)
    assert unblessed_runs(store, "training", "penguins") == 0
