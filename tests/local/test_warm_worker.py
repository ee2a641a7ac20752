"""The warm worker runs the same task commands as plain processes, only faster.

Runs here share one worker per test module (an isolated runtime folder, a short idle
timeout, stopped at the end): starting one costs the heavy imports, once.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Output
from kubetfx.components import example_gen, statistics_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx import faults
from kubetfx.dsl import component
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect
from kubetfx.local import warm
from kubetfx.local.launch import LIGHT_NOTE, command_env, is_light

KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
MARK = re.compile(r"^kubetfx: warm worker (\d+) runs this task in process (\d+)$", re.MULTILINE)


@component
def introspect(tag: str, probe: Output[Artifact]) -> str:
    """What a task's process looks like from inside: compared between warm and plain runs."""
    import json
    import logging
    import os
    import random
    import stat
    import sys

    import numpy

    main = sys.modules["__main__"]
    umask = os.umask(0)
    os.umask(umask)
    stdin = os.fstat(0)
    seen = {
        "argv0": sys.argv[0],
        "main": [main.__name__, os.path.basename(getattr(main, "__file__", ""))],
        "path0_is_cwd": sys.path[0] == os.getcwd(),
        "cwd": os.path.basename(os.getcwd()),
        "executable": sys.executable,
        "flags": list(sys.flags),
        "env": dict(os.environ),
        "umask": umask,
        "stdin": [stat.S_ISCHR(stdin.st_mode), stdin.st_rdev],
        "stdout": os.readlink("/proc/self/fd/1"),
        "stderr_same_as_stdout": os.path.samestat(os.fstat(1), os.fstat(2)),
        "stdout_buffering": [sys.stdout.line_buffering, sys.stdout.write_through],
        "logging": [logging.root.level, [type(h).__name__ for h in logging.root.handlers]],
        "task_module_is_main": sys.modules.get("kubetfx.task") is main,
        "random": [random.random(), float(numpy.random.random())],
    }
    with open(probe.path, "w") as f:
        json.dump(seen, f)
    return tag


@component
def die(how: str) -> str:
    """Ends its own process the way ``how`` says."""
    import ctypes
    import os
    import signal

    if how == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "SIGSEGV":
        ctypes.string_at(0)  # a real segmentation fault
    return how


@component
def wait_for_gate(gate: str) -> str:
    """Runs until the gate file exists (or two minutes pass)."""
    import os
    import time

    deadline = time.time() + 120
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    return gate


@dsl.pipeline(name="warm-data")
def warm_data(input_uri: str = "pkg://palmerpenguins/data/penguins.csv"):
    gen = example_gen(input_uri=input_uri)
    statistics_gen(examples=gen.outputs["examples"])
    introspect(tag="a")
    introspect(tag="b")


@dsl.pipeline(name="warm-dies")
def warm_dies(how: str = ""):
    die(how=how)


@dsl.pipeline(name="warm-gated")
def warm_gated(gate: str = ""):
    wait_for_gate(gate=gate)


@dsl.pipeline(name="warm-light")
def warm_light():
    introspect(tag="a")


# ---------------------------------------------------------------------- fixtures


@dsl.pipeline(name="warm-cold")
def warm_cold(input_uri: str = "pkg://palmerpenguins/data/penguins.csv"):
    gen = example_gen(input_uri=input_uri)
    statistics_gen(examples=gen.outputs["examples"])


@pytest.fixture(scope="module")
def module_warm_dir():
    """One runtime folder (short path: socket names are limited) for this module's worker."""
    base = tempfile.mkdtemp(prefix="ktw-", dir="/tmp")
    yield base
    warm.stop(base, now=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def warm_on(module_warm_dir: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(warm.ENABLE_ENV, "1")
    monkeypatch.setenv(warm.DIR_ENV, module_warm_dir)
    monkeypatch.setenv(warm.IDLE_ENV, "120")
    return module_warm_dir


def _run_id(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("Run "))


def _row(stdout: str, task: str) -> str:
    match = re.search(rf"^{re.escape(task)}\s+([A-Z_]+)\s+(?:[\d.]+s\s+)?(.*)$", stdout, re.MULTILINE)
    assert match, f"no row for {task} in:\n{stdout}"
    return f"{match.group(1)} {match.group(2).strip()}"


def _logs(workdir: Path, run_id: str) -> dict[str, str]:
    base = next(workdir.glob(f"root/*/{run_id}"))
    return {str(p.parent.parent.relative_to(base)): p.read_text() for p in base.glob("**/.kubetfx/log.txt")}


def _worker_pids(logs: dict[str, str]) -> dict[str, int]:
    found = {}
    for task, text in logs.items():
        match = MARK.search(text)
        if match:
            found[task] = int(match.group(1))
    return found


def _task_pids(logs: dict[str, str]) -> dict[str, int]:
    """The process each task ran in, for the tasks a warm worker ran."""
    return {task: int(match.group(2)) for task, text in logs.items() if (match := MARK.search(text))}


def _executions(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return {props(e)["task_name"]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _lineage(store, run_id: str) -> dict:
    """What a run left in ML Metadata, without ids, times and run-specific paths."""
    summary = {}
    for task, execution in _executions(store, run_id).items():
        p = props(execution)
        events = store.mlmd.get_events_by_execution_ids([execution.id])
        artifacts = {}
        for event in events:
            [artifact] = store.mlmd.get_artifacts_by_id([event.artifact_id])
            kind = store.mlmd.get_artifact_types_by_id([artifact.type_id])[0].name
            meta = props(artifact)
            artifacts[f"{pb.Event.Type.Name(event.type)} {event.path.steps[0].key}"] = {
                "type": kind,
                "keys": sorted(meta),
                "content": _content(kind, artifact.uri, meta),
            }
        summary[task] = {
            "state": pb.Execution.State.Name(execution.last_known_state),
            "keys": sorted(p),
            "inputs": {k: v for k, v in p.get("inputs", {}).items()},
            "outputs": p.get("outputs"),
            "component_version": p.get("kubetfx_component_version"),
            "artifacts": artifacts,
        }
    return summary


def _content(kind: str, uri: str, meta: dict) -> object:
    """What must be byte-identical between runs of the same inputs, in any mode."""
    if kind == "system.Dataset":
        # The TFRecords differ from run to run in any mode (tf.Example feature map order);
        # their columnar copy does not.
        return {
            str(p.relative_to(uri)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(uri).glob("**/*.parquet")
        }
    if kind.startswith("kubetfx."):
        return meta.get("kubetfx_fingerprint")
    return None  # reports name their run; the probes are compared on their own


def _probes(workdir: Path, run_id: str) -> dict[str, dict]:
    base = next(workdir.glob(f"root/*/{run_id}"))
    return {p.parent.name: json.loads(p.read_text()) for p in base.glob("*/probe")}


def _normalised(probe: dict, run_id: str, workdir: Path) -> dict:
    text = json.dumps(probe).replace(run_id, "RUN").replace(str(workdir), "WORKDIR")
    seen = json.loads(text)
    for key in ("KUBETFX_RUNNER_PID", "KUBETFX_EXECUTION_ID"):
        seen["env"].pop(key, None)
    seen.pop("random")
    return seen


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _live_worker(base: str) -> dict:
    [info] = [w for w in warm.status(base) if w.get("alive")]
    return info


# ---------------------------------------------------------------------- tests


def test_worker_name_changes_with_installed_code_and_import_time_environment() -> None:
    def key(**changed):
        return warm.code_key(
            **{"version": "0.1.0", "interpreter": "/venv/bin/python3", "site_state": "s", **changed}
        )

    names = {key(), key(site_state="t"), key(interpreter="/other/bin/python3"), key(version="0.2.0")}
    assert len(names) == 4 and key() == key()
    assert key().startswith("0.1.0-") and key(version="0.2.0").startswith("0.2.0-")
    # A package installed or upgraded: another worker folder, hence another socket.
    assert warm.socket_path(f"/run/{key()}", {}) != warm.socket_path(f"/run/{key(site_state='t')}", {})

    env = {"_KFP_RUNTIME": "true", "HOME": "/home/u", "KUBETFX_TASK_NAME": "a", "PATH": "/bin"}
    same = {**env, "KUBETFX_TASK_NAME": "b", "PATH": "/usr/bin", "KUBETFX_RUN_ID": "r2", "PWD": "/x"}
    assert warm.socket_path("/w", env) == warm.socket_path("/w", same)  # per-task values: one worker
    for changed in ({"TF_CPP_MIN_LOG_LEVEL": "0"}, {"CUDA_VISIBLE_DEVICES": ""}, {"_KFP_RUNTIME": "false"}):
        assert warm.socket_path("/w", {**env, **changed}) != warm.socket_path("/w", env), changed


def test_a_worker_notices_edits_to_the_sources_it_loaded(tmp_path: Path, monkeypatch) -> None:
    """A stale worker would run old code: it checks its loaded sources before every task."""
    source = tmp_path / "kubetfx_warm_probe_module.py"
    source.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import kubetfx_warm_probe_module  # noqa: F401 - loaded, as a worker loads kubetfx

    try:
        snapshot = warm.source_snapshot()
        assert str(source) in snapshot
        assert warm.changed_sources(snapshot) == []
        # kubetfx itself is watched when installed from a checkout; in site-packages, the
        # folder is (an install changes it), not each of its thousands of files.
        assert (warm.__file__ in snapshot) == ("site-packages" not in warm.__file__)
        assert [p for p in snapshot if "site-packages" in p] == [sysconfig.get_paths()["purelib"]]
        time.sleep(0.01)
        source.write_text("VALUE = 22\n")
        assert warm.changed_sources(snapshot) == [str(source)]
    finally:
        sys.modules.pop("kubetfx_warm_probe_module", None)


def test_the_shim_runs_the_installed_client_with_the_standard_library_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client is the installed module, not a copy; it imports nothing from site-packages."""
    base = tempfile.mkdtemp(prefix="ktw-", dir="/tmp")
    monkeypatch.setenv(warm.DIR_ENV, base)
    try:
        task_path = os.path.dirname(sys.executable) + os.pathsep + f"/nonexistent-{os.getpid()}"
        shim = warm.shim_dir(task_path)
        assert shim, "no shim on this machine"
        text = Path(shim, "python3").read_text()
        assert "from kubetfx.local.warm.client import client" in text
        assert not list(Path(shim).parent.glob("*.py"))
        root = re.search(r"sys\.path\.insert\(0, (\"[^\"]+\")\)", text).group(1)
        probe = (
            f"import sys; sys.path.insert(0, {root}); import kubetfx.local.warm.client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
            "and m.split('.')[0] not in ('kubetfx', '__main__')))"
        )
        seen = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.strip() == "[]"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_runs_through_the_worker_match_a_plain_run(workdir: Path, cli, compile_to, warm_on: str) -> None:
    path = str(compile_to(warm_data))
    first = cli("run", path)
    second = cli("run", path, "--no-cache")
    plain = cli("run", path, "--no-cache", "--no-warm")
    for result in (first, second, plain):
        assert result.returncode == 0, result.stdout + result.stderr
    runs = {name: _run_id(r.stdout) for name, r in (("first", first), ("second", second), ("plain", plain))}
    for task in ("example-gen", "statistics-gen", "introspect", "introspect-2"):
        assert _row(first.stdout, task).startswith("SUCCEEDED")
        assert _row(second.stdout, task) == _row(plain.stdout, task)
        assert _row(second.stdout, task).startswith("SUCCEEDED")

    # Every task of both warm runs ran in a process forked by one and the same worker
    # (but for example-gen in the first run if the worker was still importing then: it
    # needs no heavy library, it does not wait); the plain run's did not.
    worker = _live_worker(warm_on)
    pids = {name: _worker_pids(_logs(workdir, run_id)) for name, run_id in runs.items()}
    first_logs = _logs(workdir, runs["first"])
    if "example-gen" not in pids["first"]:
        assert first_logs["example-gen"].startswith(LIGHT_NOTE.decode())
    assert len(pids["first"]) >= 3 and len(pids["second"]) == 4
    assert set(pids["first"].values()) == set(pids["second"].values()) == {worker["pid"]}
    assert pids["plain"] == {}
    assert worker["served"] >= 7
    # The summary says that the worker stays behind, what it holds and how to stop it.
    note = next(line for line in second.stdout.splitlines() if line.startswith("Warm worker "))
    assert note.startswith(f"Warm worker {worker['pid']} stays running (") and " MB)" in note
    assert "stops after 2 min idle" in note and "worker stop" in second.stdout
    assert "Warm worker" not in plain.stdout
    worker_log = Path(worker["log"]).read_text()
    assert worker_log.count("task example-gen: process") >= 1

    # The same lineage and the same outputs (content fingerprints) as plain processes.
    store = connect(os.environ["KUBETFX_METADATA"])
    assert _lineage(store, runs["second"]) == _lineage(store, runs["plain"])
    assert _lineage(store, runs["first"]) == _lineage(store, runs["plain"])
    assert {e.last_known_state for e in _executions(store, runs["second"]).values()} == {
        pb.Execution.COMPLETE
    }

    # The task's process looks the same from inside: argv, sys.path, environment, stdio,
    # logging, umask, flags...
    warm_probes = _probes(workdir, runs["second"])
    plain_probes = _probes(workdir, runs["plain"])
    assert set(warm_probes) == {"introspect", "introspect-2"}
    # One difference: variables the preloaded libraries set when imported (TensorFlow's
    # TF2_BEHAVIOR...) are set for every task, as in a task that imports them itself.
    import_env = set(worker["import_env"])
    for task in warm_probes:
        seen = _normalised(warm_probes[task], runs["second"], workdir)
        expected = _normalised(plain_probes[task], runs["plain"], workdir)
        assert set(seen["env"]) - set(expected["env"]) <= import_env
        seen["env"] = {k: v for k, v in seen["env"].items() if k in expected["env"]}
        assert seen == expected
    # ...and forked siblings do not share random state.
    assert warm_probes["introspect"]["random"][0] != warm_probes["introspect-2"]["random"][0]
    assert warm_probes["introspect"]["random"][1] != warm_probes["introspect-2"]["random"][1]


def _own_worker_paused_at(monkeypatch: pytest.MonkeyPatch, point: str, points: Path, seconds: int) -> str:
    """A runtime folder of the test's own (so a fresh worker) whose worker pauses at the
    failpoint ``point`` for ``seconds``, saying so in ``points``; returns the folder."""
    base = tempfile.mkdtemp(prefix="ktw-", dir="/tmp")
    monkeypatch.setenv(warm.ENABLE_ENV, "1")
    monkeypatch.setenv(warm.DIR_ENV, base)
    monkeypatch.setenv(warm.IDLE_ENV, "60")
    monkeypatch.setenv(faults.ENV, f"{point}:pause")
    monkeypatch.setenv(faults.DIR_ENV, str(points))
    monkeypatch.setenv(faults.PAUSE_ENV, str(seconds))
    return base


def test_a_cold_run_starts_the_worker_at_once_and_light_tasks_do_not_wait_for_it(
    workdir: Path, cli, compile_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = workdir / "failpoints"
    # The worker stays "importing" 20 s longer: long enough for example-gen, whatever the load.
    base = _own_worker_paused_at(monkeypatch, "warm.preload", points, seconds=20)
    try:
        result = cli("run", str(compile_to(warm_cold)))
        assert result.returncode == 0, result.stdout + result.stderr
        for task in ("example-gen", "statistics-gen"):
            assert _row(result.stdout, task).startswith("SUCCEEDED")
        # One worker, started by the runner when the run began (it reached its imports
        # before any task asked for it), and it served the task that needs it...
        # (A ping waits while the worker imports what later tasks use: ask again.)
        deadline = time.time() + 120
        while not (alive := [w for w in warm.status(base) if w.get("alive")]) and time.time() < deadline:
            time.sleep(0.5)
        [worker] = alive
        [reached] = list(points.glob("warm.preload.*.json"))
        assert json.loads(reached.read_text())["pid"] == worker["pid"]
        logs = _logs(workdir, _run_id(result.stdout))
        assert _worker_pids(logs) == {"statistics-gen": worker["pid"]}
        # ...while example-gen, which needs no heavy library, ran at once in its own process.
        assert logs["example-gen"].startswith(LIGHT_NOTE.decode())
        assert not MARK.search(logs["example-gen"])
        assert worker["served"] == 1
        # What only later tasks use (TFMA, Beam's runners, the charts) it imports once it serves.
        deadline = time.time() + 300
        while time.time() < deadline:
            now = [w for w in warm.status(base) if w.get("alive")]
            if [w.get("importing") for w in now] == [[]]:
                break
            time.sleep(0.5)
        assert [w.get("importing") for w in now] == [[]], Path(worker["log"]).read_text()[-3000:]
        log = Path(worker["log"]).read_text()
        for later in (
            "tensorflow_model_analysis",
            "matplotlib.pyplot",
            "kubetfx.modelcard",
            "kubetfx.modelcard.formats",
        ):
            assert f"imported {later} in " in log
    finally:
        warm.stop(base, now=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_run_starts_the_worker_before_it_imports_ml_metadata_or_kfp(tmp_path: Path) -> None:
    """The worker's imports are the longest wait of a cold run: the run asks for the worker
    before its own heavier imports (ML Metadata's, kfp's), with the environment its tasks
    will have (ML Metadata's log level included, which names the worker)."""
    pipeline = Path(__file__).resolve().parents[2] / "pipelines" / "training" / "pipeline.yaml"
    script = f"""
import sys
import kubetfx.local.launch as launch

def asked(environ, task_env, *, remote):
    print("heavy:", sorted(m for m in ("ml_metadata", "kfp", "tensorflow") if m in sys.modules))
    print("glog:", environ.get("GLOG_minloglevel"), "kfp runtime:", task_env.get("_KFP_RUNTIME"))
    raise SystemExit(0)

launch.start_worker_early = asked
from kubetfx.local import run_pipeline
run_pipeline({str(pipeline)!r}, pipeline_root={str(tmp_path / "root")!r}, warm=True)
raise SystemExit("the worker was not asked for")
"""
    env = {k: v for k, v in os.environ.items() if k != "GLOG_minloglevel"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "heavy: []" in done.stdout and "glog: 3 kfp runtime: true" in done.stdout, done.stdout


def test_a_task_that_ends_while_the_worker_imports_is_answered_before_the_next_import(
    workdir: Path, cli, compile_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker imports what later tasks use while a task runs, one module at a time,
    and between two of them it answers what happened meanwhile: a task that ended is
    reported (and the next can start) before the next import, not after all of them."""
    points = workdir / "failpoints"
    gate = workdir / "gate"
    # Every later import takes 5 s more: the task ends during the first.
    base = _own_worker_paused_at(monkeypatch, "warm.later", points, seconds=5)
    opened = threading.Event()

    def open_gate_once_an_import_began() -> None:
        deadline = time.time() + 300
        while not list(points.glob("warm.later.*.json")) and time.time() < deadline:
            time.sleep(0.05)
        gate.write_text("open")
        opened.set()

    threading.Thread(target=open_gate_once_an_import_began, daemon=True).start()
    try:
        result = cli("run", str(compile_to(warm_gated)), "--param", f"gate={gate}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert opened.is_set()
        logs = _logs(workdir, _run_id(result.stdout))
        assert "wait-for-gate" in _worker_pids(logs)  # the task ran in the worker
        [worker] = [w for w in warm.status(base) if w.get("alive")]
        lines = Path(worker["log"]).read_text().splitlines()
        ended = next(
            i for i, line in enumerate(lines) if "task wait-for-gate: process" in line and "ended" in line
        )
        imports = [i for i, line in enumerate(lines) if " while serving; " in line]
        # The first import was under way when the task ended; the next had not begun.
        assert imports and imports[0] < ended, lines[-20:]
        assert all(i > ended for i in imports[1:]), lines[-20:]
    finally:
        warm.stop(base, now=True)
        shutil.rmtree(base, ignore_errors=True)


def test_the_client_is_answered_when_the_task_is_done_not_when_its_process_is_gone(
    workdir: Path, cli, compile_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's process reports the code it exits with once its work is done; its client
    (and so the runner) goes on while the kernel still takes the process down. Here the
    process is held after it reported: its client was answered all the same and exited,
    and the process, which never outlives its client, was killed for it; the worker logs
    that the end differed from the report. Answered only when the process is gone, the
    client would have waited out the hold (two minutes) and been told how it ended."""
    points = workdir / "failpoints"
    base = _own_worker_paused_at(monkeypatch, "warm.exit", points, seconds=120)
    try:
        result = cli("run", str(compile_to(warm_light)))
        assert result.returncode == 0, result.stdout + result.stderr
        assert _row(result.stdout, "introspect").startswith("SUCCEEDED")
        logs = _logs(workdir, _run_id(result.stdout))
        [reached] = list(points.glob("warm.exit.*.json"))
        assert json.loads(reached.read_text())["pid"] == _task_pids(logs)["introspect"]
        [worker] = [w for w in warm.status(base) if w.get("alive")]
        killed = {"signal": int(signal.SIGKILL)}
        told = f"task introspect: its client was told exit 0, but the process ended {killed}"
        deadline = time.time() + 60
        while told not in (log := Path(worker["log"]).read_text()) and time.time() < deadline:
            time.sleep(0.1)
        assert told in log, log[-2000:]
    finally:
        warm.stop(base, now=True)
        shutil.rmtree(base, ignore_errors=True)


def test_which_tasks_are_light_and_what_their_command_sets() -> None:
    argv = ["sh", "-ec", "...", "--executor_input", "{}", "--function_to_execute", "example_gen"]
    assert is_light(argv)
    assert not is_light([*argv[:-1], "trainer"])
    assert not is_light(["sh", "-ec", "echo example_gen"])
    folded = (  # as a compiled pipeline's YAML folds the task's shell script
        "'x\n\n  _KFP_RUNTIME=true KUBETFX_COMPONENT_VERSION=0.1+abc python3 -m\n   kubetfx.task --x"
    )
    assert command_env(folded) == {"_KFP_RUNTIME": "true", "KUBETFX_COMPONENT_VERSION": "0.1+abc"}
    assert command_env("python3 -m kubetfx.task --x") == {}
    assert command_env("python3 -m kfp.dsl.executor_main") is None


def test_a_task_killed_in_the_worker_fails_alone(workdir: Path, cli, compile_to, warm_on: str) -> None:
    path = str(compile_to(warm_dies))
    plain = {how: cli("run", path, "--param", f"how={how}", "--no-warm") for how in ("SIGKILL", "SIGSEGV")}
    before = None
    for how in ("SIGKILL", "SIGSEGV"):
        result = cli("run", path, "--param", f"how={how}")
        assert result.returncode == 1, result.stdout + result.stderr
        # Reported as a plain process's death is.
        assert _row(result.stdout, "die") == _row(plain[how].stdout, "die")
        store = connect(os.environ["KUBETFX_METADATA"])
        [execution] = _executions(store, _run_id(result.stdout)).values()
        assert execution.last_known_state == pb.Execution.FAILED
        [worker_pid] = _worker_pids(_logs(workdir, _run_id(result.stdout))).values()
        worker = _live_worker(warm_on)
        assert worker["pid"] == worker_pid and _alive(worker_pid)
        assert before is None or before == worker_pid
        before = worker_pid
    assert "killed by signal SIGKILL" in _row(plain["SIGKILL"].stdout, "die")

    good = cli("run", path, "--param", "how=nothing")
    assert good.returncode == 0, good.stdout + good.stderr
    assert set(_worker_pids(_logs(workdir, _run_id(good.stdout))).values()) == {before}


def test_killing_the_runner_kills_the_task_in_the_worker(workdir: Path, compile_to, warm_on: str) -> None:
    path = compile_to(warm_gated)
    gate = workdir / "gate"
    runner = subprocess.Popen(
        [KUBETFX, "run", str(path), "--param", f"gate={gate}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    state = {}
    deadline = time.time() + 300
    while time.time() < deadline and state.get("status") != "running":
        for state_file in (workdir / "root").glob("**/wait-for-gate/.kubetfx/state.json"):
            try:
                state = json.loads(state_file.read_text())
            except (OSError, json.JSONDecodeError):
                pass
        time.sleep(0.1)
    assert state.get("status") == "running", "the task never started"
    task_pid = state["pid"]
    worker = _live_worker(warm_on)
    parent = re.search(r"^PPid:\s+(\d+)", Path(f"/proc/{task_pid}/status").read_text(), re.MULTILINE)
    assert parent and int(parent.group(1)) == worker["pid"], "the task is not the worker's child"

    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    deadline = time.time() + 20
    while time.time() < deadline and _alive(task_pid):
        time.sleep(0.1)
    assert not _alive(task_pid), "the task outlived the runner"
    assert _alive(worker["pid"]), "the worker must survive"
    store = connect(os.environ["KUBETFX_METADATA"])
    [killed] = store.mlmd.get_executions_by_id([state["execution_id"]])
    assert killed.last_known_state == pb.Execution.RUNNING  # never COMPLETE
    gate.write_text("open")
    runner.stdout.close()


def test_tasks_run_as_plain_processes_when_no_worker_can_start(
    workdir: Path, cli, compile_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tempfile.mkdtemp(prefix="ktw-", dir="/tmp")
    monkeypatch.setenv(warm.ENABLE_ENV, "1")
    monkeypatch.setenv(warm.DIR_ENV, base)
    monkeypatch.setenv(warm.START_ENV, "0")  # nobody waits for the worker's imports
    try:
        result = cli("run", str(compile_to(warm_light)))
        assert result.returncode == 0, result.stdout + result.stderr
        [log] = _logs(workdir, _run_id(result.stdout)).values()
        assert "kubetfx: warm worker not used (the worker did not start in time" in log
        assert not MARK.search(log)
        store = connect(os.environ["KUBETFX_METADATA"])
        [execution] = _executions(store, _run_id(result.stdout)).values()
        assert execution.last_known_state == pb.Execution.COMPLETE
    finally:
        warm.stop(base, now=True)  # the worker that started too late is still importing
        shutil.rmtree(base, ignore_errors=True)


# A stand-in for a worker process: it announces itself and answers ping and stop over the
# worker protocol (kubetfx.local.warm.protocol's framing), without importing anything heavy. It
# proves which workers `kubetfx worker status|stop` address, not how a real worker stops
# (the tests above stop real ones).
STAND_IN = """
import json, os, socket, sys
from kubetfx.local.warm import protocol

path, interpreter = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen()
info = {"pid": os.getpid(), "socket": path, "interpreter": interpreter, "idle_seconds": 900.0}
with open(path[: -len(".sock")] + ".json", "w") as f:
    json.dump(info, f)
while True:
    conn, _ = listener.accept()
    request, _ = protocol.recv_request(conn)
    if request["op"] == "stop":
        conn.sendall(b'{"stopping": true}\\n')
        os.unlink(path)
        os.unlink(path[: -len(".sock")] + ".json")
        sys.exit(0)
    status = {**info, "uptime": 1.0, "served": 0, "running": [], "idle_for": 1.0, "rss_mb": 12.0}
    conn.sendall((json.dumps(status) + "\\n").encode())
    conn.close()
"""


def test_worker_stop_stops_only_this_environments_workers_unless_all(cli) -> None:
    base = tempfile.mkdtemp(prefix="ktw-", dir="/tmp")
    mine = str(Path(sys.executable).with_name("python3"))  # the CLI's environment
    other = "/home/someone/other-checkout/.venv/bin/python3"
    started = []
    try:
        for folder, interpreter in (("0.1.0-aaaa", mine), ("0.1.0-bbbb", other)):
            os.makedirs(os.path.join(base, folder))
            sock = os.path.join(base, folder, "e.sock")
            started.append(subprocess.Popen([sys.executable, "-c", STAND_IN, sock, interpreter]))
            deadline = time.time() + 60
            while not os.path.exists(sock[: -len(".sock")] + ".json") and time.time() < deadline:
                time.sleep(0.05)
        env = {warm.DIR_ENV: base}
        status = cli("worker", "status", env=env)
        assert str(started[0].pid) in status.stdout and str(started[1].pid) not in status.stdout
        everyone = cli("worker", "status", "--all", env=env)
        assert str(started[0].pid) in everyone.stdout and "other-checkout/.venv" in everyone.stdout

        stopped = cli("worker", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == f"stopped warm worker(s) {started[0].pid}"
        assert started[0].wait(timeout=30) == 0
        assert started[1].poll() is None, "another environment's worker must be left alone"
        assert "no warm worker running for" in cli("worker", "stop", env=env).stdout

        stopped_all = cli("worker", "stop", "--all", env=env)
        assert stopped_all.stdout.strip() == f"stopped warm worker(s) {started[1].pid}"
        assert started[1].wait(timeout=30) == 0
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(base, ignore_errors=True)
