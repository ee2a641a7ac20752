"""The whole reference pipeline on the penguins data, as a user runs it: the first run is
blessed and pushed; a weakened model is not blessed against the served baseline and pushes
nothing; an unfair model is not blessed and says why; a rollback changes what is served,
and with it the next baseline. Real TensorFlow, TFMA and ML Metadata throughout."""

import json
import re
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.baseline import resolve_baseline
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
RULE_MODULE = str(REPO / "tests/components/evaluator/rule_model.py")


def _state(stdout: str, task: str) -> str:
    # Tasks inside a condition are named after it ("condition-1/pusher").
    match = re.search(rf"^(?:\S+/)?{re.escape(task)}\s+([A-Z_]+)", stdout, re.MULTILINE)
    assert match, f"no row for {task} in:\n{stdout}"
    return match.group(1)


def _run_id(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]


def _executions(store, run_id: str) -> dict[str, pb.Execution]:
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    return {props(e)["task_name"].split("/")[-1]: e for e in store.mlmd.get_executions_by_context(ctx.id)}


def _output(store, execution: pb.Execution, key: str) -> pb.Artifact:
    events = store.mlmd.get_events_by_execution_ids([execution.id])
    [artifact_id] = [
        e.artifact_id for e in events if e.type == pb.Event.OUTPUT and e.path.steps[0].key == key
    ]
    return store.mlmd.get_artifacts_by_id([artifact_id])[0]


def _input_ids(store, execution: pb.Execution, key: str) -> list[int]:
    events = store.mlmd.get_events_by_execution_ids([execution.id])
    return [e.artifact_id for e in events if e.type == pb.Event.INPUT and e.path.steps[0].key == key]


def _versions(root: Path, name: str) -> list[int]:
    return sorted(int(p.name) for p in (root / name).iterdir() if p.name.isdigit())


def test_blessed_weakened_unfair_and_rollback(workdir: Path, cli) -> None:
    push_root = workdir / "serving"
    env = {"KUBETFX_PUSH_ROOT": str(push_root)}
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")

    # 1. First run: no baseline yet; blessed on the absolute thresholds; pushed as version 1.
    first = cli("run", PIPELINE, "--param", "epochs=15", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _state(first.stdout, "evaluator") == "SUCCEEDED" and _state(first.stdout, "pusher") == "SUCCEEDED"
    assert _versions(push_root, "penguins") == [1]
    assert (push_root / "penguins/1/saved_model.pb").is_file()
    run1 = _executions(store, _run_id(first.stdout))
    model1 = _output(store, run1["trainer"], "model")
    blessing1 = props(_output(store, run1["evaluator"], "blessing"))
    assert blessing1["blessed"] == 1 and any("no baseline" in r for r in json.loads(blessing1["reasons"]))
    pushed1 = props(_output(store, run1["pusher"], "pushed_model"))
    assert pushed1["pushed"] == 1 and pushed1["version"] == 1 and pushed1["latency_p95_ms"] > 0

    # 2. A deliberately weakened model: not blessed against the served baseline; no push.
    weak = cli("run", PIPELINE, "--param", "epochs=1", "--param", "learning_rate=0.00001", env=env)
    assert weak.returncode == 0, weak.stdout + weak.stderr
    assert _state(weak.stdout, "pusher") == "SKIPPED" and "evaluator-blessed == true" in weak.stdout
    assert _versions(push_root, "penguins") == [1]
    run2 = _executions(store, _run_id(weak.stdout))
    assert _input_ids(store, run2["evaluator"], "baseline_model") == [model1.id]
    reasons = json.loads(props(_output(store, run2["evaluator"], "blessing"))["reasons"])
    assert any(r.startswith("accuracy change vs baseline on Overall") for r in reasons), reasons

    # 3. An unfair model (right on two islands, wrong on a third of Dream): not blessed, says why.
    unfair = cli(
        "run",
        PIPELINE,
        "--param",
        f"module_file={RULE_MODULE}",
        "--param",
        "model_name=penguins-rule",
        "--param",
        "min_accuracy=0",
        "--param",
        "max_fairness_gap=0.1",
        env=env,
    )
    assert unfair.returncode == 0, unfair.stdout + unfair.stderr
    assert _state(unfair.stdout, "pusher") == "SKIPPED"
    run3 = _executions(store, _run_id(unfair.stdout))
    reasons = json.loads(props(_output(store, run3["evaluator"], "blessing"))["reasons"])
    assert len(reasons) == 1 and reasons[0].startswith("fairness on island: accuracy gap"), reasons
    assert "island=Dream" in reasons[0] and "exceeds 0.1" in reasons[0]
    assert not (push_root / "penguins-rule").exists()

    # 4. A second good model is pushed as version 2; rolling back to 1 publishes version 3
    #    with version 1's files, is recorded in lineage, and makes model 1 the baseline again.
    second = cli("run", PIPELINE, "--param", "epochs=16", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _versions(push_root, "penguins") == [1, 2]
    model2 = _output(store, _executions(store, _run_id(second.stdout))["trainer"], "model")
    assert resolve_baseline(store, "penguins", "kubetfx-training").model_id == model2.id

    rolled = cli("rollback", "penguins", "--to", "1", env=env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _versions(push_root, "penguins") == [1, 2, 3]
    assert (push_root / "penguins/3/saved_model.pb").read_bytes() == (
        push_root / "penguins/1/saved_model.pb"
    ).read_bytes()
    baseline = resolve_baseline(store, "penguins", "kubetfx-training")
    assert baseline.model_id == model1.id and "rollback" in baseline.detail

    # 5. The audit of the rolled-back version tells the whole story from lineage alone.
    md = cli("audit", "penguins:3", env=env)
    assert md.returncode == 0, md.stderr
    text = md.stdout
    assert "# Audit: penguins version 3" in text and "rollback to version 1" in text
    assert f"| model artifact | {model1.id} |" in text and "| decision | BLESSED |" in text
    assert "pkg://palmerpenguins/data/penguins.csv" in text and "| fingerprint | " in text
    assert "| sex=female |" in text and "| island=Dream |" in text  # per-slice metrics
    assert "no baseline model" in text  # run 1 had none: the blessing says so
    page = workdir / "audit.html"
    assert cli("audit", "penguins:2", "--format", "html", "-o", str(page), env=env).returncode == 0
    html = page.read_text()
    assert "<script" not in html and "island=Dream" in html and str(model1.id) in html  # 2's baseline
    provenance = cli("lineage", "model", "penguins:2", env=env)
    assert provenance.returncode == 0 and "example-gen (execution" in provenance.stdout
    assert "baseline_model: system.Model" in provenance.stdout
    pushes = cli("lineage", "pushes", "penguins", env=env).stdout
    assert "penguins:3" in pushes and "rollback to 1" in pushes
    unknown = cli("audit", "penguins:9", env=env)
    assert unknown.returncode == 2 and "no push of model 'penguins' version 9" in unknown.stderr

    # 6. Impact of the source data: every model trained on it and every push that came of it.
    impact = cli("lineage", "dataset", "pkg://palmerpenguins/data/penguins.csv", env=env)
    assert impact.returncode == 0, impact.stderr
    assert str(model1.id) in impact.stdout.split("models trained on it:")[1].splitlines()[0]
    pushed_line = impact.stdout.split("pushed:")[-1]
    assert all(f"penguins:{version} at" in pushed_line for version in (1, 2, 3))
