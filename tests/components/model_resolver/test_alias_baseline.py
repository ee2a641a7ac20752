"""model_resolver with ``baseline_alias``: the Evaluator's baseline is the version an alias
names (``production``), not the latest push; until the alias is assigned, the latest push.
Lineage is written as the task wrapper writes it, into a real SQLite ML Metadata store."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubetfx.components.model_resolver import executor

from kubetfx.artifacts.kinds import MODEL, PUSHED_MODEL, TYPE_KEY
from kubetfx.lineage import aliases
from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution, start_execution
from kubetfx.lineage.store import Store, connect


def _train_and_push(store: Store, tmp_path: Path, version: int) -> tuple[int, str]:
    """A Trainer execution outputs a Model; a Pusher execution reads it and records version
    ``version`` of "penguins". Returns the Model's id and URI."""
    run = f"run-{version}"
    uri = str(tmp_path / run / "model")
    trained = Identity(pipeline_name="training", run_id=run, task_name="trainer")
    execution = start_execution(store, trained, params={}, inputs={})
    model = ArtifactRecord("model", uri, "system.Model", {TYPE_KEY: MODEL})
    model.id = finish_execution(store, trained, execution, outputs={"model": [model]}, output_params={})[
        "model"
    ][0]
    pusher = Identity(pipeline_name="training", run_id=run, task_name="pusher")
    execution = start_execution(store, pusher, params={}, inputs={"model": [model]})
    meta = {
        TYPE_KEY: PUSHED_MODEL,
        "pushed": 1,
        "model_name": "penguins",
        "model_uri": uri,
        "version": version,
        "destination": f"/serving/penguins/{version}",
        "pushed_at": "2026-01-01T00:00:00Z",
    }
    pushed = ArtifactRecord("pushed_model", str(tmp_path / run / "pushed"), "system.Artifact", meta)
    finish_execution(store, pusher, execution, outputs={"pushed_model": [pushed]}, output_params={})
    return int(model.id), uri


def test_the_baseline_is_the_version_the_alias_names(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    first_id, first_uri = _train_and_push(store, tmp_path, 1)
    second_id, second_uri = _train_and_push(store, tmp_path, 2)

    # Not assigned yet: the latest push, and the source says the alias named nothing.
    before = executor.resolve(store, "penguins", "training", alias="production")
    assert before.found and before.model_id == second_id
    assert before.source.startswith("alias production not assigned yet; served: version 2")

    aliases.assign_alias(store, "penguins", 1, "production", reason="canary of 2 still running")
    found = executor.resolve(store, "penguins", "training", alias="production")
    assert (found.found, found.model_id, found.model_uri) == (True, first_id, first_uri)
    assert found.source == "alias production: version 1 at /serving/penguins/1"
    # Without the alias the latest push stays the baseline.
    latest = executor.resolve(store, "penguins", "training")
    assert (latest.model_id, latest.model_uri) == (second_id, second_uri)

    aliases.assign_alias(store, "penguins", 2, "production")
    assert executor.resolve(store, "penguins", "training", alias="production").model_id == second_id


def test_a_malformed_alias_fails_even_without_lineage() -> None:
    with pytest.raises(aliases.AliasError, match="not valid"):
        executor.resolve(None, "penguins", "training", alias="Production!")
    assert not executor.resolve(None, "penguins", "training", alias="production").found


def _rollout(store: Store, canary: int, stable: int, state: str) -> None:
    """A ``kubetfx.Rollout`` execution as the stepped canary records it."""
    import json

    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage.record import to_value

    execution = pb.Execution(type_id=store.type_id("execution", aliases.ROLLOUT_EXECUTION))
    facts = {
        "model_name": "penguins",
        "canary_version": canary,
        "stable_version": stable,
        "state": state,
        "reason": "r",
        "steps": json.dumps([]),
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    store.call(store.mlmd.put_executions, [execution])


@pytest.mark.parametrize(("state", "served"), [("in_progress", 1), ("rolled_back", 1), ("promoted", 2)])
def test_a_canary_serves_only_once_promoted(tmp_path: Path, state: str, served: int) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    ids = {version: _train_and_push(store, tmp_path, version)[0] for version in (1, 2)}
    assert executor.resolve(store, "penguins", "training").model_id == ids[2]  # no rollout: the latest push
    _rollout(store, canary=2, stable=1, state=state)
    found = executor.resolve(store, "penguins", "training")
    assert found.model_id == ids[served] and found.source.startswith(f"served: version {served} at ")
