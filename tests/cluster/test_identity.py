"""A kubetfx task knows its pipeline, run and task in a cluster, or refuses to start.

In a KFP pod (the backend sets ``KFP_POD_NAME``) the identity comes from the environment
that ``kubetfx.cluster.use_cluster_settings()`` compiles in; a component loaded from its
component.yaml into a pipeline without that call stops before it runs, saying what to
add, instead of recording lineage under an unknown run.
"""

import json
from pathlib import Path

import pytest
import yaml

from kubetfx import task as kubetfx_task
from kubetfx.errors import KubetfxError

REPO = Path(__file__).resolve().parents[2]
IDENTITY_ENV = ("KUBETFX_PIPELINE_NAME", "KUBETFX_RUN_ID", "KUBETFX_TASK_NAME", "KFP_POD_NAME")


@pytest.fixture(autouse=True)
def no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)


def test_a_kfp_pod_without_identity_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("KFP_POD_NAME", "my-pipeline-abc-system-container-impl-1")
    monkeypatch.setenv("KUBETFX_METADATA", f"sqlite:///{tmp_path}/mlmd.sqlite")
    executor_input = {"inputs": {"parameterValues": {"input_uri": "x"}}, "outputs": {}}
    code = kubetfx_task.run(
        [
            "--executor_input",
            json.dumps(executor_input),
            "--function_to_execute",
            "data_fingerprint",
            "--component_module_path",
            str(tmp_path / "never_loaded.py"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "use_cluster_settings()" in err and "does not know its run" in err
    assert not (tmp_path / "mlmd.sqlite").exists()  # nothing recorded under an unknown run


def test_identity_comes_from_the_environment_and_the_scope_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_POD_NAME", "pod")
    monkeypatch.setenv("KUBETFX_PIPELINE_NAME", "kubetfx-training")
    monkeypatch.setenv("KUBETFX_RUN_ID", "0b5c6f1e-run")
    monkeypatch.setenv("KUBETFX_TASK_NAME", "trainer")
    identity = kubetfx_task.resolve_identity({}, "trainer")
    assert (identity["pipeline_name"], identity["run_id"], identity["task_name"]) == (
        "kubetfx-training",
        "0b5c6f1e-run",
        "trainer",
    )
    scoped = kubetfx_task.resolve_identity({"kubetfx_lineage_scope": "penguins-eu"}, "trainer")
    assert scoped["pipeline_name"] == "penguins-eu" and scoped["run_id"] == "0b5c6f1e-run"


def test_outside_a_kfp_pod_the_fallback_is_named_unknown() -> None:
    identity = kubetfx_task.resolve_identity({}, "example_gen")
    assert (identity["pipeline_name"], identity["run_id"], identity["task_name"]) == (
        "unknown-pipeline",
        "unknown-run",
        "example-gen",
    )


def test_a_component_yaml_in_a_user_pipeline_gets_its_identity_from_use_cluster_settings(
    tmp_path: Path,
) -> None:
    """A component loaded from component.yaml into someone else's pipeline: the call
    wires its identity exactly as in kubetfx's own pipelines."""
    from kfp import compiler, components, dsl

    from kubetfx.cluster import use_cluster_settings

    fingerprint = components.load_component_from_file(
        str(REPO / "components/data_fingerprint/component.yaml")
    )

    @dsl.pipeline(name="someone-elses")
    def someone_elses(uri: str = "/data/x.csv", scope: str = "") -> None:
        # A loaded component takes the scope as the input it is (use_lineage_scope() fills
        # it in only for components defined with kubetfx.dsl).
        fingerprint(input_uri=uri, kubetfx_lineage_scope=scope)
        use_cluster_settings()

    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(someone_elses, str(path))
    ir, platform = yaml.safe_load_all(path.read_text())
    executor = ir["deploymentSpec"]["executors"]["exec-data-fingerprint"]["container"]
    assert {e["name"]: e["value"] for e in executor["env"]} == {
        "KUBETFX_PIPELINE_NAME": "someone-elses",
        "KUBETFX_TASK_NAME": "data-fingerprint",
    }
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-data-fingerprint"]
    assert config["fieldPathAsEnv"] == [
        {"name": "KUBETFX_RUN_ID", "fieldPath": "metadata.labels['pipeline/runid']"}
    ]
    task = ir["root"]["dag"]["tasks"]["data-fingerprint"]
    assert task["inputs"]["parameters"]["kubetfx_lineage_scope"] == {"componentInputParameter": "scope"}


def test_use_lineage_scope_comes_first() -> None:
    from kfp import dsl
    from kubetfx.components import data_fingerprint

    from kubetfx.cluster import use_lineage_scope

    with pytest.raises(RuntimeError, match="before the pipeline's first task"):

        @dsl.pipeline(name="late-scope")
        def late_scope(scope: str = "") -> None:
            data_fingerprint(input_uri="x")
            use_lineage_scope(scope)


def test_data_read_must_be_the_data_fingerprinted() -> None:
    params = {"kubetfx_data_fingerprint": "a" * 32}
    kubetfx_task._check_data_fingerprint(params, {"parameterValues": {"fingerprint": "a" * 32}})
    kubetfx_task._check_data_fingerprint({}, {"parameterValues": {"fingerprint": "b" * 32}})
    with pytest.raises(KubetfxError, match="input data changed while the run read it"):
        kubetfx_task._check_data_fingerprint(params, {"parameterValues": {"fingerprint": "b" * 32}})


def test_the_command_s_placeholders_serve_runners_that_resolve_them(tmp_path: Path) -> None:
    """The KFP SDK's local runner resolves KFP's placeholders in the command (the backend's
    launcher does not): resolved, they give the identity where no environment does."""
    from kfp.local import placeholder_utils

    doc = yaml.safe_load((REPO / "components/data_fingerprint/component.yaml").read_text())
    [executor] = doc["deploymentSpec"]["executors"].values()
    command = executor["container"]["command"]
    resolved = placeholder_utils.replace_placeholders(
        full_command=command,
        executor_input_dict={"outputs": {"outputFile": str(tmp_path / "out.json")}},
        pipeline_resource_name="my-local-pipeline",
        task_resource_name="data-fingerprint",
        pipeline_root=str(tmp_path),
        unique_pipeline_id="4242",
    )
    script = resolved[2]
    assert "--kubetfx_run_id '4242'" in script and "--kubetfx_pipeline 'my-local-pipeline'" in script
    given = {"pipeline": "my-local-pipeline", "run_id": "4242", "task": "data-fingerprint"}
    identity = kubetfx_task.resolve_identity({}, "data_fingerprint", given)
    assert (identity["pipeline_name"], identity["run_id"]) == ("my-local-pipeline", "4242")


def test_in_a_kfp_pod_the_unresolved_placeholders_give_way_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    literal = {"pipeline": "{{$.pipeline_job_name}}", "run_id": "{{$.pipeline_job_uuid}}", "task": "x"}
    monkeypatch.setenv("KFP_POD_NAME", "pod")
    with pytest.raises(KubetfxError, match="use_cluster_settings"):
        kubetfx_task.resolve_identity({}, "trainer", literal)
    monkeypatch.setenv("KUBETFX_PIPELINE_NAME", "kubetfx-training")
    monkeypatch.setenv("KUBETFX_RUN_ID", "9d1c-run")
    identity = kubetfx_task.resolve_identity({}, "trainer", literal)
    assert (identity["pipeline_name"], identity["run_id"]) == ("kubetfx-training", "9d1c-run")
