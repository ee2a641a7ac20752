"""Fault injection on the reference training pipeline.

For each of three points (ExampleGen writing its examples, the Trainer in the middle of
``fit``, the Pusher copying the model into the push destination) and each victim (the
runner, ``kubetfx run``, and the task process at that point), the test starts the real
pipeline with a failpoint armed (``kubetfx.faults``: the process stops at the point and
says so), SIGKILLs the victim there, and checks:

* lineage: no execution is COMPLETE without its output artifacts, and every LIVE
  artifact's URI exists and is complete (no ``.partial-`` URI is ever recorded);
* the killed task's execution is RUNNING (runner killed) or FAILED (task killed), never
  COMPLETE, and its output was never published (at most a ``<uri>.partial-*`` is left);
* the push destination shows no version (only a hidden ``.N.partial-*`` folder may be
  there), and after the runner's kill no process of the killed run is left;
* rerunning the same command without the failpoint completes, every task that had
  completed before the kill is a cache hit on that very execution, and the destination
  then holds exactly one complete version (``1``), the one the rerun's Pusher recorded.

All six cases share one metadata store and pipeline root, as a user's reruns do: each
case names its own push destination (and, where its point needs the task to run again,
its own data copy or epoch count), so the cache spares the steps before its point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import faults
from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import outputs_of, props
from kubetfx.lineage.store import connect
from kubetfx.local.cache import kubetfx_sources as _kubetfx_sources

REPO = Path(__file__).resolve().parents[2]
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
MODEL = "penguins"
# point -> (task the failpoint is in, failpoint name)
POINTS = {
    "example_gen": ("example-gen", "example_gen.write"),
    "trainer": ("trainer", "trainer.fit"),
    "pusher": ("pusher", "pusher.copy"),
}
VICTIMS = ("runner", "task")
# Caching off by design: they read lineage or look at the data on every run.
NEVER_CACHED = {"model-resolver", "example-validator", "data-fingerprint", "model-card"}
CASES = [(point, victim) for point in POINTS for victim in VICTIMS]


def test_a_failpoint_acts_only_where_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    monkeypatch.setenv(faults.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(faults.PAUSE_ENV, "0")
    faults.failpoint("pusher.copy")  # unset: nothing
    monkeypatch.setenv(faults.ENV, "trainer.fit:pause, pusher.copy:pause")
    faults.failpoint("example_gen.write")  # not named: nothing
    assert list(tmp_path.iterdir()) == []
    faults.failpoint("pusher.copy")
    [mark] = tmp_path.iterdir()
    assert mark.name == f"pusher.copy.{os.getpid()}.json"
    assert json.loads(mark.read_text()) == {"name": "pusher.copy", "pid": os.getpid()}
    monkeypatch.setenv(faults.ENV, "pusher.copy:crash")
    with pytest.raises(ValueError, match="unknown action 'crash'"):
        faults.failpoint("pusher.copy")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One store, pipeline root and push root for all cases; the data copies they read."""
    base = tmp_path_factory.mktemp("faults")
    penguins = local_path("pkg://palmerpenguins/data/penguins.csv")
    data = {}
    for name in ("shared", *(f"example_gen-{v}" for v in VICTIMS)):
        # Same file name and content: ExampleGen runs again (another input_uri) and the
        # examples' fingerprint, hence every later cache key, stays the same.
        (base / "data" / name).mkdir(parents=True)
        data[name] = str(shutil.copy(penguins, base / "data" / name / "penguins.csv"))
    env = {
        **os.environ,
        "KUBETFX_METADATA": f"sqlite:///{base}/mlmd.sqlite",
        "KUBETFX_PIPELINE_ROOT": str(base / "root"),
        "KUBETFX_PUSH_ROOT": str(base / "serving"),
    }
    for name in (faults.ENV, faults.DIR_ENV, faults.PAUSE_ENV):
        env.pop(name, None)
    return {"base": base, "env": env, "data": data, "marks": base / "failpoints"}


def _params(lab: dict, point: str, victim: str) -> list[str]:
    case = f"{point}-{victim}"
    input_uri = lab["data"][case if point == "example_gen" else "shared"]
    epochs = {"runner": 6, "task": 7}[victim] if point == "trainer" else 5
    params = {"input_uri": input_uri, "epochs": epochs, "model_name": MODEL, "push_destination": case}
    return [arg for key, value in params.items() for arg in ("-p", f"{key}={value}")]


def _start(lab: dict, args: list[str], name: str, log: Path) -> subprocess.Popen:
    env = {
        **lab["env"],
        faults.ENV: f"{name}:pause",
        faults.DIR_ENV: str(lab["marks"]),
        faults.PAUSE_ENV: "240",  # longer than any wait below; the process carries on after
    }
    with open(log, "w") as out:
        return subprocess.Popen(
            [KUBETFX, "run", PIPELINE, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=lab["base"],
            stdin=subprocess.DEVNULL,
        )


def _wait_for_point(lab: dict, name: str, runner: subprocess.Popen, log: Path) -> int:
    """The pid of the process stopped at failpoint ``name``."""
    deadline = time.time() + 420
    while time.time() < deadline:
        for mark in lab["marks"].glob(f"{name}.*.json"):
            return int(json.loads(mark.read_text())["pid"])
        if runner.poll() is not None:
            raise AssertionError(f"the run ended before failpoint {name}:\n{log.read_text()}")
        time.sleep(0.1)
    runner.kill()
    raise AssertionError(f"failpoint {name} never reached:\n{log.read_text()}")


def _run_id(text: str) -> str:
    match = re.search(r"^run (\S+): pipeline", text, re.MULTILINE) or re.search(r"^Run (\S+) ", text, re.M)
    assert match, text
    return match.group(1)


def _by_task(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    assert ctx is not None, f"no run {run_id} in lineage"
    return {props(e)["task_name"].split("/")[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _complete(type_name: str, uri: str) -> str:
    """Why the artifact at ``uri`` is not complete; "" when it is."""
    path = Path(uri)
    if ".partial-" in uri:
        return "a staging URI"
    if not path.exists():
        return "missing"
    needs = {
        "system.Dataset": [
            f"Split-{s}/{f}"
            for s in ("train", "eval")
            for f in ("data.parquet", "data_tfrecord-00000-of-00001.gz")
        ],
        "kubetfx.ExampleStatistics": ["Split-train", "Split-eval"],
        "kubetfx.Schema": ["schema.pbtxt"],
        "system.Model": ["Format-Serving/saved_model.pb", "Format-Serving/variables", "feature_spec.json"],
        "kubetfx.PushedModel": ["pushed.json"],
    }.get(type_name, [])
    missing = [n for n in needs if not (path / n).exists()]
    if type_name == "kubetfx.ModelBlessing" and not any(
        (path / n).exists() for n in ("BLESSED", "NOT_BLESSED")
    ):
        missing.append("BLESSED or NOT_BLESSED")
    if type_name == "kubetfx.PushedModel" and not missing:
        pushed = json.loads((path / "pushed.json").read_text())
        if pushed.get("pushed") and not Path(pushed["destination"], "saved_model.pb").is_file():
            missing.append(f"the pushed version {pushed['destination']}/saved_model.pb")
    return f"lacks {missing}" if missing else ""


def _assert_consistent(store) -> int:
    """No COMPLETE execution without its outputs; every LIVE artifact there and complete."""
    types = {t.id: t.name for t in store.mlmd.get_artifact_types()}
    complete = 0
    for execution in store.mlmd.get_executions():
        if execution.last_known_state != pb.Execution.COMPLETE:
            continue
        complete += 1
        for key, artifacts in outputs_of(store, execution.id).items():
            for artifact in artifacts:
                why = _complete(types[artifact.type_id], artifact.uri)
                assert not why, f"execution {execution.id} is COMPLETE but its {key} {artifact.uri}: {why}"
    for artifact in store.mlmd.get_artifacts():
        assert ".partial-" not in artifact.uri, artifact.uri
        if artifact.state == pb.Artifact.LIVE:
            why = _complete(types[artifact.type_id], artifact.uri)
            assert not why, f"LIVE artifact {artifact.id} {artifact.uri}: {why}"
    return complete


def _versions(model_dir: Path) -> tuple[list[str], list[str]]:
    """(visible entries, hidden staging folders) of a model's folder in the destination."""
    if not model_dir.exists():
        return [], []
    names = sorted(p.name for p in model_dir.iterdir())
    hidden = [n for n in names if re.fullmatch(r"\.[0-9]+\.partial-.+", n)]
    return [n for n in names if n not in hidden], hidden


@pytest.mark.slow
@pytest.mark.parametrize(("point", "victim"), CASES, ids=[f"{p}-{v}" for p, v in CASES])
def test_sigkill_at_a_point_then_rerun_completes_and_reuses(
    lab: dict, point: str, victim: str, run_processes
) -> None:
    task, name = POINTS[point]
    case = f"{point}-{victim}"
    args = _params(lab, point, victim)
    destination = lab["base"] / "serving" / case / MODEL
    shutil.rmtree(lab["marks"], ignore_errors=True)
    log = lab["base"] / f"{case}.log"

    sources = _kubetfx_sources.__wrapped__()  # part of every cache key
    runner = _start(lab, args, name, log)
    pid = _wait_for_point(lab, name, runner, log)
    run_id = _run_id(log.read_text())
    store = connect(lab["env"]["KUBETFX_METADATA"])
    if victim == "runner":
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        # The task dies with the runner, and nothing of the run is left (give a loaded
        # machine time): no orphan keeps writing while the rerun starts.
        deadline = time.time() + 30
        while time.time() < deadline and (run_processes.alive(pid) or run_processes.of(run_id)):
            time.sleep(0.1)
        assert not run_processes.alive(pid), f"the {task} task outlived the runner"
        assert not run_processes.of(run_id), (
            f"processes of the killed run are left: {run_processes.of(run_id)}"
        )
        expected = pb.Execution.RUNNING
    else:
        os.kill(pid, signal.SIGKILL)
        runner.wait(timeout=120)
        text = log.read_text()
        assert runner.returncode == 1, text
        assert re.search(rf"{task}: FAILED after \S+: killed by signal SIGKILL", text), text
        expected = pb.Execution.FAILED

    killed = _by_task(store, run_id)
    assert killed[task].last_known_state == expected, killed[task]
    _assert_consistent(store)
    # The killed task's output never reached its URI; only its staging path may be left.
    task_dir = next(Path(lab["env"]["KUBETFX_PIPELINE_ROOT"]).glob(f"*/{run_id}/**/{task}"))
    outputs = [p.name for p in task_dir.iterdir() if not p.name.startswith(".")]
    assert all(".partial-" in n for n in outputs), f"{task} published {outputs} although killed"
    staged = {n.split(".partial-")[0]: task_dir / n for n in outputs}
    if point == "example_gen":  # killed mid-write: one split closed, the other still open
        # Splits are written side by side, batch by batch: a closed columnar copy reads, one
        # still being written has no footer yet.
        def closed(split: str) -> bool:
            try:
                pq.ParquetFile(staged["examples"] / f"Split-{split}" / "data.parquet")
            except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
                return False
            return True

        assert closed("train"), outputs
        assert not closed("eval"), outputs
    elif point == "trainer":  # killed mid-fit: nothing exported yet
        assert staged["model"].is_dir() and not (staged["model"] / "Format-Serving").exists()
    # The destination shows no version: a killed push is a hidden staging folder only.
    visible, hidden = _versions(destination)
    assert visible == [], f"{destination} shows {visible} after the kill"
    if point == "pusher":
        [partial] = hidden  # the copy had begun: part of the model, never saved_model.pb
        copied = [p for p in (destination / partial).rglob("*") if p.is_file()]
        assert copied and not (destination / partial / "saved_model.pb").exists(), copied
    else:
        assert hidden == []

    before = {
        t: (e.id, e.last_known_state, props(e).get("cached_execution_id"))
        for t, e in killed.items()
        if e.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED)
    }
    if point != "example_gen":
        assert {"example-gen", "statistics-gen", "schema-gen", "example-validator"} <= set(before)

    rerun = subprocess.run(
        [KUBETFX, "run", PIPELINE, *args],
        capture_output=True,
        text=True,
        env=lab["env"],
        cwd=lab["base"],
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert _kubetfx_sources.__wrapped__() == sources, (
        "kubetfx's sources changed while the case ran (an edit in this checkout?): every cache key"
        " changed with them, so reuse cannot be checked; run the case again"
    )
    again = _by_task(store, _run_id(rerun.stdout))
    for t, (execution_id, state, cached_from) in before.items():
        if t in NEVER_CACHED:
            continue
        reused = again[t]
        assert reused.last_known_state == pb.Execution.CACHED, (t, rerun.stdout)
        # A task that ran to completion before the kill is reused, not run again.
        source = str(execution_id) if state == pb.Execution.COMPLETE else cached_from
        assert props(reused)["cached_execution_id"] == source, (t, props(reused))
        assert re.search(rf"^(?:\S+/)?{t}\s+CACHED", rerun.stdout, re.MULTILINE), rerun.stdout
    assert again[task].last_known_state == pb.Execution.COMPLETE
    assert all(e.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED) for e in again.values())
    _assert_consistent(store)

    # Exactly one complete new version, the one the rerun's Pusher recorded.
    visible, hidden = _versions(destination)
    assert visible == ["1"], f"{destination} holds {visible}"
    assert (destination / "1" / "saved_model.pb").is_file()
    assert (destination / "1" / "variables" / "variables.index").is_file()
    assert len(hidden) == (1 if point == "pusher" else 0)  # the killed push's, never shown
    [pushed] = outputs_of(store, again["pusher"].id)["pushed_model"]
    record = props(pushed)
    assert record["pushed"] == 1 and record["version"] == 1, record
    assert record["destination"] == str(destination / "1")
