"""Lineage as the task wrapper writes it, for the alias tests: a Trainer execution that
outputs a Model and a Pusher execution that reads it and outputs a PushedModel, in a real
SQLite ML Metadata store (no model files: aliases read lineage only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kubetfx.artifacts.kinds import MODEL, PUSHED_MODEL, TYPE_KEY
from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution, start_execution
from kubetfx.lineage.store import Store, connect


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return connect(f"sqlite:///{tmp_path}/mlmd.sqlite")


@pytest.fixture
def push(store: Store, tmp_path: Path) -> Callable[..., int]:
    """``push(version, model_name="penguins")``: record a trained and pushed model; returns
    the Model artifact's id."""

    def record_push(version: int, model_name: str = "penguins") -> int:
        run = f"run-{model_name}-{version}"
        model_uri = str(tmp_path / "runs" / run / "model")
        trained = Identity(pipeline_name="training", run_id=run, task_name="trainer")
        execution = start_execution(store, trained, params={}, inputs={})
        model = ArtifactRecord("model", model_uri, "system.Model", {TYPE_KEY: MODEL})
        model.id = finish_execution(store, trained, execution, outputs={"model": [model]}, output_params={})[
            "model"
        ][0]
        pusher = Identity(pipeline_name="training", run_id=run, task_name="pusher")
        execution = start_execution(
            store, pusher, params={"model_name": model_name}, inputs={"model": [model]}
        )
        destination = str(tmp_path / "serving" / model_name / str(version))
        pushed = ArtifactRecord(
            "pushed_model",
            str(tmp_path / "runs" / run / "pushed"),
            "system.Artifact",
            {
                TYPE_KEY: PUSHED_MODEL,
                "pushed": 1,
                "model_name": model_name,
                "model_uri": model_uri,
                "version": version,
                "destination": destination,
                "pushed_at": f"2026-01-0{version}T00:00:00Z",
            },
        )
        finish_execution(
            store, pusher, execution, outputs={"pushed_model": [pushed]}, output_params={"pushed": True}
        )
        return int(model.id)

    return record_push
