"""``kubetfx rollback``: an earlier version is republished as the highest one, and lineage
says which Model is served from then on (what the Evaluator's baseline resolver reads).

Lineage is written as the task wrapper writes it (a Trainer execution outputs the Model,
a Pusher execution takes it as input ``model`` and outputs the PushedModel), into a real
SQLite ML Metadata store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubetfx.components.pusher.executor import PushResult
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import pushing
from kubetfx.lineage.record import ArtifactRecord, Identity, finish_execution, props, start_execution
from kubetfx.lineage.store import Store, connect

MODEL_NAME = "penguins"


def make_model(path: Path, tag: str) -> Path:
    serving = path / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_text(f"graph {tag}")
    (serving / "variables" / "variables.index").write_text(f"weights {tag}")
    return path


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def pipeline_run(store: Store, tmp_path: Path, root: Path, run: str, blessed: bool = True) -> int:
    """Train (a stand-in model folder) and push it, recording lineage as kubetfx.task does; returns
    the Model artifact's id."""
    model_dir = make_model(tmp_path / "runs" / run / "model", run)
    trained = Identity(pipeline_name="training", run_id=run, task_name="trainer")
    execution = start_execution(store, trained, params={}, inputs={})
    model = ArtifactRecord("model", str(model_dir), "system.Model", {"kubetfx_type": "kubetfx.Model"})
    model.id = finish_execution(store, trained, execution, outputs={"model": [model]}, output_params={})[
        "model"
    ][0]

    if blessed:
        published = pushing.publish(str(model_dir / "Format-Serving"), MODEL_NAME, allowed_roots=[str(root)])
        result = PushResult(
            pushed=True,
            model_name=MODEL_NAME,
            model_uri=model.uri,
            version=published.version,
            destination=published.uri,
            pushed_at=published.pushed_at,
            latency_p50_ms=1.0,
            latency_p95_ms=2.0,
        )
    else:
        result = PushResult(pushed=False, model_name=MODEL_NAME, model_uri=model.uri, reason="not blessed")
    pushed = Identity(pipeline_name="training", run_id=run, task_name="pusher")
    execution = start_execution(store, pushed, params={"model_name": MODEL_NAME}, inputs={"model": [model]})
    out = ArtifactRecord(
        "pushed_model", str(tmp_path / "runs" / run / "pushed"), "system.Artifact", result.metadata()
    )
    finish_execution(
        store,
        pushed,
        execution,
        outputs={"pushed_model": [out]},
        output_params={"pushed": result.pushed, "version": result.version},
    )
    return model.id


def served_model(store: Store) -> tuple[pb.Artifact, pb.Artifact, pb.Execution]:
    """The baseline resolver's query: newest live PushedModel (pushed=1) -> its producer -> input "model"."""
    candidates = [
        a
        for a in store.call(store.mlmd.get_artifacts_by_type, "kubetfx.PushedModel")
        if a.state == pb.Artifact.LIVE
        and props(a).get("model_name") == MODEL_NAME
        and props(a).get("pushed") == 1
    ]
    pushed = max(candidates, key=lambda a: a.id)
    [made] = [
        e for e in store.call(store.mlmd.get_events_by_artifact_ids, [pushed.id]) if e.type == pb.Event.OUTPUT
    ]
    [execution] = store.call(store.mlmd.get_executions_by_id, [made.execution_id])
    events = store.call(store.mlmd.get_events_by_execution_ids, [execution.id])
    [model_id] = [
        e.artifact_id for e in events if e.type == pb.Event.INPUT and e.path.steps[0].key == "model"
    ]
    [model] = store.call(store.mlmd.get_artifacts_by_id, [model_id])
    return pushed, model, execution


@pytest.fixture
def history(tmp_path: Path) -> dict:
    """Versions 1 and 2 pushed by two runs of the training pipeline, and an unblessed third run."""
    root = tmp_path / "serving"
    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    store = connect(url)
    first = pipeline_run(store, tmp_path, root, "run-1")
    second = pipeline_run(store, tmp_path, root, "run-2")
    pipeline_run(store, tmp_path, root, "run-3", blessed=False)
    assert served_model(store)[1].id == second
    return {"root": root, "url": url, "store": store, "models": [first, second]}


def test_rollback_republishes_the_version_and_the_baseline_follows(history, cli) -> None:
    root, store = history["root"], history["store"]
    env = {"KUBETFX_PUSH_ROOT": str(root)}
    done = cli("rollback", MODEL_NAME, "--to", "1", "--metadata", history["url"], env=env)
    assert done.returncode == 0, done.stderr
    assert f"published its files as version 3 at {root / MODEL_NAME / '3'}" in done.stdout
    assert tree(root / MODEL_NAME / "3") == tree(root / MODEL_NAME / "1") != tree(root / MODEL_NAME / "2")

    pushed, model, execution = served_model(store)
    assert model.id == history["models"][0]
    assert execution.last_known_state == pb.Execution.COMPLETE
    [kind] = store.call(store.mlmd.get_execution_types_by_id, [execution.type_id])
    assert kind.name == "kubetfx.Rollback"
    assert pushed.uri == str(root / MODEL_NAME / "3")
    meta = props(pushed)
    assert meta["pushed_at"].endswith("Z")
    assert {k: meta[k] for k in ("kubetfx_type", "pushed", "model_name", "version", "destination")} == {
        "kubetfx_type": "kubetfx.PushedModel",
        "pushed": 1,
        "model_name": MODEL_NAME,
        "version": 3,
        "destination": str(root / MODEL_NAME / "3"),
    }
    assert (meta["rollback"], meta["rolled_back_to"]) == (1, 1)
    events = store.call(store.mlmd.get_events_by_execution_ids, [execution.id])
    assert sorted((e.type, e.path.steps[0].key) for e in events) == [
        (pb.Event.INPUT, "model"),
        (pb.Event.OUTPUT, "pushed_model"),
    ]
    contexts = store.call(store.mlmd.get_contexts_by_execution, execution.id)
    assert [
        (c.name, store.call(store.mlmd.get_context_types_by_id, [c.type_id])[0].name) for c in contexts
    ] == [("training", "system.Pipeline")]

    # A rollback of a rollback still reaches the original model; --destination is explicit here.
    again = cli(
        "rollback", MODEL_NAME, "--to", "3", "--destination", str(root), "--metadata", history["url"], env=env
    )
    assert again.returncode == 0, again.stderr
    assert "as version 4" in again.stdout
    assert served_model(store)[1].id == history["models"][0]
    assert tree(root / MODEL_NAME / "4") == tree(root / MODEL_NAME / "1")


def test_rollback_errors_name_what_is_missing(history, cli, tmp_path: Path) -> None:
    root, url = history["root"], history["url"]
    env = {"KUBETFX_PUSH_ROOT": str(root)}

    def fails(*args: str) -> str:
        done = cli("rollback", MODEL_NAME, *args, "--metadata", url, env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("kubetfx: error: ")
        return done.stderr

    assert "version 9 of model 'penguins' has no push record in lineage" in fails("--to", "9")
    assert "recorded versions: 1, 2" in fails("--to", "9")
    # On disk but never recorded (pushed by hand): which model it is, lineage cannot say.
    pushing.publish(
        str(make_model(tmp_path / "by-hand", "x") / "Format-Serving"), MODEL_NAME, allowed_roots=[str(root)]
    )
    assert "version 3 of model 'penguins' has no push record" in fails("--to", "3")
    # Recorded but gone from the destination.
    for path in sorted((root / MODEL_NAME / "2").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / MODEL_NAME / "2").rmdir()
    assert "version 2 of model 'penguins' does not exist at" in fails("--to", "2")
    assert "outside the allowed roots" in fails("--to", "1", "--destination", str(tmp_path / "elsewhere"))
    done = cli("rollback", "../x", "--to", "1", "--metadata", url, env=env)
    assert done.returncode == 2 and "model_name '../x' is not allowed" in done.stderr
    assert sorted(p.name for p in (root / MODEL_NAME).iterdir()) == ["1", "3"]
