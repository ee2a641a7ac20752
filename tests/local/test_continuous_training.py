"""The continuous-training pipeline as a scheduler runs it, on spans landing in a folder: the
first span trains and is pushed; the same data again stops after data_change_check; a new
span trains again against the served model; a drifted span stops at validation. Then the
lineage query behind "unchanged", on the store those runs wrote and on hand-made lineage."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from kubetfx.components.data_change_check import executor
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.fingerprint import local_path
from kubetfx.lineage import record
from kubetfx.lineage.changes import last_trained_data, last_trained_fingerprint
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/continuous_training/pipeline.yaml")
NAME = "kubetfx-continuous-training"
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
GATED = (
    "statistics-gen",
    "schema-gen",
    "example-validator",
    "trainer",
    "evaluator",
    "serving-check",
    "pusher",
)


def _penguins() -> pd.DataFrame:
    return pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)


def _write_span(data: Path, span: int, frame: pd.DataFrame) -> None:
    folder = data / f"span-{span}"
    folder.mkdir(parents=True)
    frame.to_csv(folder / "penguins.csv", index=False)


def _run(data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBETFX, "run", PIPELINE, "--param", f"input_uri={data}/span-{{SPAN}}/penguins.csv"]
        + ["--param", "epochs=5"],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _state(stdout: str, task: str, missing: str = "") -> str:
    # Tasks inside conditions are named after them ("condition-1/condition-2/pusher").
    match = re.search(rf"^(?:\S+/)?{re.escape(task)}\s+([A-Z_]+)", stdout, re.MULTILINE)
    assert match or missing, f"no row for {task} in:\n{stdout}"
    return match.group(1) if match else missing


def _run_id(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]


def _executions(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return {props(e)["task_name"].split("/")[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _io(store, execution: pb.Execution, kind: int, key: str) -> list[pb.Artifact]:
    events = store.mlmd.get_events_by_execution_ids([execution.id])
    ids = [e.artifact_id for e in events if e.type == kind and e.path.steps[0].key == key]
    return store.mlmd.get_artifacts_by_id(ids)


def _versions(root: Path) -> list[int]:
    folder = root / "penguins"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Four scheduled runs in one store: span 1, span 1 again, span 2, drifted span 3."""
    work = tmp_path_factory.mktemp("continuous")
    data = work / "data"
    with pytest.MonkeyPatch.context() as env:
        env.chdir(work)
        env.setenv("KUBETFX_METADATA", f"sqlite:///{work}/mlmd.sqlite")
        env.setenv("KUBETFX_PIPELINE_ROOT", str(work / "root"))
        env.setenv("KUBETFX_PUSH_ROOT", str(work / "serving"))
        penguins = _penguins()
        runs: dict[str, subprocess.CompletedProcess] = {}
        versions: dict[str, list[int]] = {}

        _write_span(data, 1, penguins)
        for name in ("first", "same"):
            runs[name] = _run(data)
            versions[name] = _versions(work / "serving")

        _write_span(data, 2, penguins.iloc[::-1].drop(penguins.index[::10]))  # new rows, same distribution
        runs["new_span"] = _run(data)
        versions["new_span"] = _versions(work / "serving")

        drifted = penguins.copy()
        mass = pd.to_numeric(drifted["body_mass_g"], errors="coerce")
        drifted["body_mass_g"] = (
            (mass + 2500).clip(upper=6999).astype("Int64").astype(str).replace("<NA>", "NA")
        )
        _write_span(data, 3, drifted)
        runs["drifted"] = _run(data)
        versions["drifted"] = _versions(work / "serving")

        for name, result in runs.items():  # shown with -s
            print(name, next((x for x in result.stdout.splitlines() if x.startswith("Run ")), "no summary"))
        yield {"runs": runs, "versions": versions, "store": connect(f"sqlite:///{work}/mlmd.sqlite")}


def test_first_span_trains_and_pushes(history: dict) -> None:
    first = history["runs"]["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    assert _state(first.stdout, "data-change-check") == "SUCCEEDED"
    assert "changed=True" in first.stdout and "no earlier run of" in first.stdout
    assert all(_state(first.stdout, t) == "SUCCEEDED" for t in GATED)
    assert history["versions"]["first"] == [1]


def test_unchanged_data_stops_after_the_check(history: dict) -> None:
    store, same = history["store"], history["runs"]["same"]
    assert same.returncode == 0, same.stdout + same.stderr
    first_id = _run_id(history["runs"]["first"].stdout)
    assert "changed=False, unchanged: span 1, fingerprint " in same.stdout
    assert f"is what run {first_id} trained on" in same.stdout
    assert _state(same.stdout, "condition-1") == "SKIPPED"
    # The summary lists the tasks behind the gate as skipped (or only the gate itself).
    assert all(_state(same.stdout, t, missing="SKIPPED") == "SKIPPED" for t in GATED)
    # Nothing ran behind the gate: no statistics, no training, no push.
    executions = _executions(store, _run_id(same.stdout))
    assert set(executions) == {
        "data-fingerprint",
        "example-gen",
        "serving-drift",  # off without serving logs: it says so and forces nothing
        "data-change-check",
        "condition-1",
    }
    assert props(executions["serving-drift"])["outputs"]["retrain"] is False
    assert executions["condition-1"].last_known_state == pb.Execution.CANCELED
    check = props(executions["data-change-check"])
    assert check["outputs"]["changed"] is False and check["outputs"]["previous_run"] == first_id
    assert history["versions"]["same"] == [1]


def test_a_new_span_trains_again_against_the_served_model(history: dict) -> None:
    store, new = history["store"], history["runs"]["new_span"]
    assert new.returncode == 0, new.stdout + new.stderr
    assert "changed=True, changed: span 2, fingerprint" in new.stdout
    assert all(_state(new.stdout, t) in ("SUCCEEDED", "SKIPPED") for t in GATED)
    assert _state(new.stdout, "trainer") == "SUCCEEDED" and _state(new.stdout, "evaluator") == "SUCCEEDED"
    model1 = _io(
        store,
        _executions(store, _run_id(history["runs"]["first"].stdout))["trainer"],
        pb.Event.OUTPUT,
        "model",
    )
    run3 = _executions(store, _run_id(new.stdout))
    assert "served: version 1 at " in props(run3["model-resolver"])["outputs"]["source"]
    baseline = _io(store, run3["evaluator"], pb.Event.INPUT, "baseline_model")
    assert [a.id for a in baseline] == [model1[0].id]
    blessed = props(run3["evaluator"])["outputs"]["blessed"]
    assert _state(new.stdout, "pusher") == ("SUCCEEDED" if blessed else "SKIPPED")
    assert history["versions"]["new_span"] == ([1, 2] if blessed else [1])


def test_a_drifted_span_fails_validation_and_trains_nothing(history: dict) -> None:
    drifted = history["runs"]["drifted"]
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "changed=True" in drifted.stdout
    assert _state(drifted.stdout, "example-validator") == "FAILED"
    assert "feature 'body_mass_g'" in drifted.stdout and "Jensen-Shannon" in drifted.stdout
    assert _state(drifted.stdout, "trainer") == "NOT_RUN"
    executions = _executions(history["store"], _run_id(drifted.stdout))
    assert executions["trainer"].last_known_state == pb.Execution.CANCELED
    assert history["versions"]["drifted"] == history["versions"]["new_span"]


def test_last_trained_data_skips_skipped_and_failed_runs(history: dict) -> None:
    store, runs = history["store"], history["runs"]
    first, new, drifted = (_run_id(runs[k].stdout) for k in ("first", "new_span", "drifted"))
    fingerprints = {
        run_id: props(_io(store, _executions(store, run_id)["example-gen"], pb.Event.OUTPUT, "examples")[0])[
            "fingerprint"
        ]
        for run_id in (first, new, drifted)
    }
    # The drifted run failed validation: the last run that trained is still the span-2 one.
    last = last_trained_data(store, NAME)
    assert (last.run_id, last.span, last.fingerprint) == (new, 2, fingerprints[new])
    assert last_trained_data(store, NAME, exclude_run=drifted).run_id == new
    # Without it, the run before: the skipped run ("same") did not train, so the first one.
    assert last_trained_fingerprint(store, NAME, exclude_run=new) == (fingerprints[first], first)
    assert last_trained_data(store, "kubetfx-training") is None


# ---------------------------------------------------------------- without a pipeline run


def _hand_made_run(store, run_id: str, fingerprint: str, *, blessed: bool, push: str) -> None:
    """ExampleGen -> Evaluator -> (Pusher: "ok", "failed" or "none") in lineage only."""

    def task(name, inputs, outputs, ok=True):
        identity = record.Identity("hand-made", run_id, name)
        execution = record.start_execution(store, identity, params={}, inputs=inputs)
        if not ok:
            record.fail_execution(store, execution, "boom")
            return {}
        return record.finish_execution(store, identity, execution, outputs=outputs, output_params={})

    def artifact(key, uri, meta, id=None):
        return record.ArtifactRecord(key, uri, "system.Artifact", meta, id)

    examples_meta = {"kubetfx_type": "kubetfx.Examples", "fingerprint": fingerprint, "span": 4}
    ids = task("example-gen", {}, {"examples": [artifact("examples", f"/x/{run_id}/e", examples_meta)]})
    examples = artifact("examples", f"/x/{run_id}/e", examples_meta, ids["examples"][0])
    blessing_meta = {"kubetfx_type": "kubetfx.ModelBlessing", "blessed": int(blessed)}
    ids = task(
        "evaluator",
        {"examples": [examples]},
        {"blessing": [artifact("blessing", f"/x/{run_id}/b", blessing_meta)]},
    )
    if push != "none":
        blessing = artifact("blessing", f"/x/{run_id}/b", blessing_meta, ids["blessing"][0])
        task("pusher", {"blessing": [blessing]}, {}, ok=push == "ok")


def test_a_blessed_run_counts_only_once_its_push_finished(tmp_path: Path) -> None:
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    assert last_trained_data(store, "hand-made") is None
    _hand_made_run(store, "run-a", "fp-a", blessed=True, push="ok")
    _hand_made_run(store, "run-b", "fp-b", blessed=True, push="failed")
    assert last_trained_fingerprint(store, "hand-made") == ("fp-a", "run-a")
    assert last_trained_data(store, "hand-made", require_push=False).run_id == "run-b"
    _hand_made_run(store, "run-c", "fp-c", blessed=False, push="none")  # not blessed: nothing to push
    assert last_trained_fingerprint(store, "hand-made") == ("fp-c", "run-c")
    assert last_trained_fingerprint(store, "hand-made", exclude_run="run-c") == ("fp-a", "run-a")


def test_the_check_answers_without_lineage_when_forced_and_by_fingerprint(tmp_path: Path) -> None:
    meta = {"kubetfx_type": "kubetfx.Examples", "fingerprint": "fp-a", "span": 4}
    off = executor.run(meta, "/x/e", store=None, pipeline_name="hand-made", run_id="now")
    assert off.changed and off.reason.startswith("changed: lineage is off")
    store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
    _hand_made_run(store, "run-a", "fp-a", blessed=False, push="none")
    same = executor.run(meta, "/x/e", store=store, pipeline_name="hand-made", run_id="now")
    assert not same.changed and same.previous_run == "run-a" and same.reason.startswith("unchanged:")
    assert executor.run(meta, "/x/e", store=store, pipeline_name="hand-made", run_id="run-a").changed
    forced = executor.run(meta, "/x/e", store=store, pipeline_name="hand-made", run_id="now", force=True)
    assert forced.changed and forced.reason.startswith("forced:")
    other = executor.run(
        {**meta, "fingerprint": "fp-b"}, "/x/e", store=store, pipeline_name="hand-made", run_id="now"
    )
    assert other.changed and other.previous_run == "run-a" and "differs from span 4" in other.reason
    with pytest.raises(executor.MissingFingerprintError, match="has no 'fingerprint'"):
        executor.run({"span": 1}, "/x/e", store=store, pipeline_name="hand-made", run_id="now")
    with pytest.raises(Exception, match="is a kubetfx.Model"):
        executor.run({"kubetfx_type": "kubetfx.Model"}, "/m", store=store, pipeline_name="x", run_id="now")
