"""The lineage scope of a run: one compiled pipeline, two datasets, separate lineage.

The continuous-training pipeline runs on dataset A (scope ``penguins-a``), then on the
same data under scope ``penguins-b``, then on A again. Scope B sees no earlier run of its
own, so its data change check answers "changed" and it trains; A's second run finds A's
first and stops after the check. Every execution lands in its scope's pipeline context.
"""

import re
import shutil
from pathlib import Path

from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/continuous_training/pipeline.yaml")


def _state(stdout: str, task: str) -> str:
    match = re.search(rf"^(?:\S+/)?{re.escape(task)}\s+([A-Z_]+)", stdout, re.MULTILINE)
    assert match, f"no row for {task} in:\n{stdout}"
    return match.group(1)


def _run_id(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]


def test_runs_of_another_scope_are_not_this_scope_s_history(workdir: Path, cli) -> None:
    data = workdir / "data" / "penguins.csv"
    data.parent.mkdir()
    shutil.copy(local_path("pkg://palmerpenguins/data/penguins.csv"), data)
    common = ("-p", f"input_uri={data}", "-p", "epochs=2")

    first_a = cli("run", PIPELINE, *common, "--scope", "penguins-a")
    assert first_a.returncode == 0, first_a.stdout + first_a.stderr
    assert _state(first_a.stdout, "trainer") == "SUCCEEDED"

    first_b = cli("run", PIPELINE, *common, "--param", "lineage_scope=penguins-b")
    assert first_b.returncode == 0, first_b.stdout + first_b.stderr
    # Scope B has no run that trained: the same data counts as changed, and it trains.
    assert _state(first_b.stdout, "trainer") == "SUCCEEDED"  # the scope is in the cache key too

    second_a = cli("run", PIPELINE, *common, "--scope", "penguins-a")
    assert second_a.returncode == 0, second_a.stdout + second_a.stderr
    assert _state(second_a.stdout, "data-change-check") == "SUCCEEDED"
    assert _state(second_a.stdout, "trainer") == "SKIPPED"  # stopped after the check

    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    checks = {}
    for name, done in (("first_a", first_a), ("first_b", first_b), ("second_a", second_a)):
        run = store.mlmd.get_context_by_type_and_name("system.PipelineRun", _run_id(done.stdout))
        executions = store.mlmd.get_executions_by_context(run.id)
        scopes = {props(e)["pipeline_name"] for e in executions}
        assert scopes == {"penguins-b" if name == "first_b" else "penguins-a"}, (name, scopes)
        [check] = [e for e in executions if props(e)["task_name"].endswith("data-change-check")]
        checks[name] = props(check)["outputs"]
    assert checks["first_b"]["changed"] is True and checks["first_b"]["previous_run"] == ""
    assert checks["second_a"]["changed"] is False
    assert checks["second_a"]["previous_run"] == _run_id(first_a.stdout)

    for scope in ("penguins-a", "penguins-b"):
        context = store.mlmd.get_context_by_type_and_name("system.Pipeline", scope)
        assert context is not None, scope
    assert store.mlmd.get_context_by_type_and_name("system.Pipeline", "kubetfx-continuous-training") is None
    bad = cli("run", PIPELINE, "--scope", "x", "-p", "lineage_scope=y")
    assert bad.returncode == 2 and "disagree" in bad.stderr
