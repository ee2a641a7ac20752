"""model_resolver's executor on a real ML Metadata store: no lineage, nothing blessed yet,
the latest blessed model, and never the candidate as its own baseline."""

from __future__ import annotations

from pathlib import Path

from kubetfx.components.model_resolver import executor

from kubetfx.artifacts.kinds import BLESSING, MODEL, TYPE_KEY
from kubetfx.lineage import record
from kubetfx.lineage.store import connect


def _bless(store, model_uri: str, model_name: str) -> None:
    """What an Evaluator's execution records: the model it read, the blessing it wrote."""
    identity = record.Identity(pipeline_name="training", run_id="run-1", task_name="evaluator")
    model = record.ArtifactRecord("model", model_uri, "system.Model", {TYPE_KEY: MODEL})
    execution = record.start_execution(store, identity, params={}, inputs={"model": [model]})
    blessing = record.ArtifactRecord(
        "blessing",
        f"{model_uri}-blessing",
        "system.Artifact",
        {TYPE_KEY: BLESSING, "blessed": 1, "model_name": model_name},
    )
    record.finish_execution(store, identity, execution, outputs={"blessing": [blessing]}, output_params={})


def test_the_baseline_is_the_latest_blessed_model_never_the_candidate(tmp_path: Path) -> None:
    off = executor.resolve(None, "penguins", "training")
    assert (off.found, off.model_uri, off.model_id, off.source) == (False, "", 0, "none: lineage is off")
    assert "lineage is off" in off.message

    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    none = executor.resolve(store, "penguins", "training")
    assert (none.found, none.source) == (False, "none") and "no model 'penguins'" in none.message

    _bless(store, "/models/1", "penguins")
    found = executor.resolve(store, "penguins", "training", candidate_uri="/models/2")
    assert found.found and found.model_uri == "/models/1" and found.model_id > 0
    assert found.source.startswith("latest blessed model") and f"model {found.model_id}" in found.message
    assert not executor.resolve(store, "penguins", "training", candidate_uri="/models/1").found
    assert not executor.resolve(store, "other-model", "training").found
