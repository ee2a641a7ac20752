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


def test_a_task_pushes_the_streak_with_its_own_evaluation(tmp_path: Path, gateway, monkeypatch) -> None:
    """The Evaluator pushes before it records: its own blessing counts on top of lineage's."""
    import json
    import urllib.request

    from kubetfx import metrics

    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    for run in ("r1", "r2"):
        _evaluate(store, "training", run, "penguins", False)
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, gateway.url)
    evaluation = {TYPE_KEY: BLESSING, "blessed": 0, "model_name": "penguins"}

    def pushed_streak() -> float:
        with urllib.request.urlopen(f"{gateway.url}/api/v1/metrics", timeout=5) as response:
            groups = json.loads(response.read())["data"]
        [group] = [g for g in groups if g["labels"].get("model") == "penguins"]
        return float(group["kubetfx_model_unblessed_runs"]["metrics"][0]["value"])

    common = {"pipeline": "training", "task": "evaluator", "seconds": 1.0, "ended": 1.0, "store": store}
    assert metrics.push_task(succeeded=True, outputs=[evaluation], **common) == ""
    assert pushed_streak() == 3
    assert metrics.push_task(succeeded=True, outputs=[{**evaluation, "blessed": 1}], **common) == ""
    assert pushed_streak() == 0
