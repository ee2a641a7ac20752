"""The local runner honours every construct it claims: conditions, loops, exit handlers,
importers, nested pipelines; and refuses the others before anything runs."""

from pathlib import Path

import pytest
import yaml
from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from kubetfx.errors import ParameterError, PipelineSpecError, UnsupportedLocallyError
from kubetfx.local import run_pipeline

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def flip(seed: int) -> str:
    return "heads" if seed % 2 else "tails"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def echo(msg: str) -> str:
    return msg


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def square(x: int) -> int:
    return x * x


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def total(xs: list) -> int:
    return int(sum(xs))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def make(text: str, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write(text.upper())


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def read(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        return f.read()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def boom(msg: str):
    raise ValueError(f"boom: {msg}")


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def final(status: dsl.PipelineTaskFinalStatus, report: str):
    with open(report, "w") as f:
        f.write(status.state)


@dsl.pipeline
def inner(x: str) -> str:
    made = make(text=x)
    return read(data=made.outputs["data"]).output


@dsl.pipeline(name="constructs")
def constructs(seed: int = 3, items: list = [1, 2, 3], report: str = "", data_uri: str = ""):  # noqa: B006
    flipped = flip(seed=seed)
    with dsl.ExitHandler(final(report=report)):
        with dsl.If(flipped.output == "heads"):
            echo(msg="H")
        with dsl.Elif(flipped.output == "edge"):
            echo(msg="E")
        with dsl.Else():
            echo(msg="T")
        with dsl.ParallelFor(items, parallelism=2) as item:
            squared = square(x=item)
        total(xs=dsl.Collected(squared.output))
        imported = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
        text = read(data=imported.output)
        inner(x=text.output)


@dsl.pipeline(name="failing")
def failing(report: str = ""):
    with dsl.ExitHandler(final(report=report)):
        first = echo(msg="ok")
        broken = boom(msg=first.output)
        echo(msg="after").after(broken)


def _by_suffix(result, suffix: str):
    matches = [t for t in result.tasks if t.name.endswith(suffix)]
    assert len(matches) == 1, [t.name for t in result.tasks]
    return matches[0]


def _states(result) -> dict[str, str]:
    return {t.name: t.state for t in result.tasks if t.kind != "dag"}


def test_conditions_loops_importer_nested_and_exit_handler(workdir: Path, compile_to) -> None:
    data = workdir / "input.txt"
    data.write_text("penguins")
    report = workdir / "report.txt"
    path = compile_to(constructs)
    params = {"report": str(report), "data_uri": str(data)}

    first = run_pipeline(path, params=params)

    assert first.state == "SUCCEEDED", [(t.name, t.state, t.message) for t in first.tasks]
    states = _states(first)
    # seed 3 -> heads: only the If branch runs; Elif and Else are skipped, not failed.
    assert states["exit-handler-1/condition-branches-2/condition-3/echo"] == "SUCCEEDED"
    skipped = [t for t in first.tasks if t.state == "SKIPPED"]
    assert {t.name.split("/")[-1] for t in skipped if t.kind == "dag"} == {"condition-4", "condition-5"}
    # ... and the tasks inside them are listed as skipped, with the condition as the reason.
    inside = {t.name.split("/")[-2]: t for t in skipped if t.kind != "dag"}
    assert set(inside) == {"condition-4", "condition-5"}
    assert all(t.message.startswith("condition false: ") for t in inside.values())
    assert _by_suffix(first, "/total").params["Output"] == 1 + 4 + 9
    assert len([t for t in first.tasks if t.name.endswith("/square")]) == 3
    assert _by_suffix(first, "inner/read").params["Output"] == "PENGUINS"
    assert report.read_text() == "SUCCEEDED"

    second = run_pipeline(path, params=params)
    assert second.state == "SUCCEEDED"
    ran = {n: s for n, s in _states(second).items() if s not in ("SKIPPED",)}
    assert set(ran.values()) == {"CACHED", "SUCCEEDED"}
    # Every container task is reused; the importer re-registers nothing new either.
    assert all(s == "CACHED" for n, s in ran.items() if not n.endswith("importer") and "final" not in n)

    # Same URI, new content: everything downstream of the data misses the cache.
    data.write_text("puffins")
    third = run_pipeline(path, params=params)
    assert third.state == "SUCCEEDED"
    assert _by_suffix(third, "exit-handler-1/read").state == "SUCCEEDED"
    assert _by_suffix(third, "inner/read").params["Output"] == "PUFFINS"
    assert _by_suffix(third, "/total").state == "CACHED"


def test_else_branch_and_no_cache(workdir: Path, compile_to) -> None:
    data = workdir / "input.txt"
    data.write_text("x")
    path = compile_to(constructs)
    params = {"seed": "2", "report": str(workdir / "r.txt"), "data_uri": str(data), "items": "[5]"}
    result = run_pipeline(path, params=params, cache=False)
    assert result.state == "SUCCEEDED"
    assert _states(result)["exit-handler-1/condition-branches-2/condition-5/echo-3"] == "SUCCEEDED"
    assert _by_suffix(result, "/total").params["Output"] == 25
    again = run_pipeline(path, params=params, cache=False)
    assert "CACHED" not in _states(again).values()


def test_failure_stops_downstream_and_exit_handler_still_runs(workdir: Path, compile_to) -> None:
    report = workdir / "report.txt"
    result = run_pipeline(compile_to(failing), params={"report": str(report)})
    assert result.state == "FAILED"
    broken = _by_suffix(result, "/boom")
    assert broken.state == "FAILED" and "boom: ok" in broken.message
    assert _by_suffix(result, "/echo-2").state == "NOT_RUN"
    assert report.read_text() == "FAILED"


def test_parameter_errors_are_caught_before_the_run(workdir: Path, compile_to) -> None:
    path = compile_to(constructs)
    with pytest.raises(ParameterError, match="'seed' must be an integer, got 'three'"):
        run_pipeline(path, params={"seed": "three"})
    with pytest.raises(ParameterError, match="unknown parameter 'sead'"):
        run_pipeline(path, params={"sead": "1"})
    with pytest.raises(ParameterError, match="'items' must be JSON"):
        run_pipeline(path, params={"items": "[1,"})
    assert not (workdir / "root").exists()


def test_not_a_pipeline_and_unsupported_constructs_fail_before_the_run(workdir: Path, compile_to) -> None:
    notes = workdir / "notes.yaml"
    notes.write_text("title: not a pipeline\n")
    with pytest.raises(PipelineSpecError, match="not a compiled KFP pipeline"):
        run_pipeline(notes)
    broken = workdir / "broken.yaml"
    broken.write_text("pipelineInfo: {name: x}\nroot: [\n")
    with pytest.raises(PipelineSpecError, match=r"broken.yaml:\d+:\d+: not valid YAML"):
        run_pipeline(broken)

    spec = yaml.safe_load(compile_to(constructs).read_text())
    resolver = dict(spec)
    resolver["deploymentSpec"]["executors"]["exec-total"] = {"resolver": {"outputArtifactQueries": {}}}
    path = workdir / "resolver.yaml"
    path.write_text(yaml.safe_dump(resolver))
    with pytest.raises(UnsupportedLocallyError, match="'resolver' is not supported locally"):
        run_pipeline(path)

    spec = yaml.safe_load(compile_to(constructs).read_text())
    tasks = spec["components"]["comp-condition-branches-2"]["dag"]["tasks"]
    tasks["condition-3"]["triggerPolicy"]["condition"] = "size(inputs.parameter_values['x']) > 2"
    path = workdir / "cel.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UnsupportedLocallyError, match="'size'.*does not support"):
        run_pipeline(path)
    assert not (workdir / "root").exists()
