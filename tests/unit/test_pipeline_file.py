"""The pipeline-file reader and parameter coercer that ``kubetfx run`` and ``kubetfx submit`` share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetfx import pipeline_file
from kubetfx.errors import ParameterError, PipelineSpecError
from kubetfx.local import spec

PIPELINE = """\
pipelineInfo:
  name: typed
root:
  dag:
    tasks: {}
  inputDefinitions:
    parameters:
      name: {parameterType: STRING, defaultValue: world}
      epochs: {parameterType: NUMBER_INTEGER, defaultValue: 3}
      rate: {parameterType: NUMBER_DOUBLE, defaultValue: 0.1}
      strict: {parameterType: BOOLEAN, defaultValue: false}
      features: {parameterType: LIST, defaultValue: [a, b]}
      options: {parameterType: STRUCT, defaultValue: {k: 1}}
      data: {parameterType: STRING}
      note: {parameterType: STRING, isOptional: true}
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.3
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    written = tmp_path / "typed.yaml"
    written.write_text(PIPELINE)
    return written


def run_side(path: Path, given: dict[str, Any]) -> dict[str, Any]:
    """What ``kubetfx run`` does with the parameters."""
    return spec.resolve_parameters(spec.load(path), given)


def submit_side(path: Path, given: dict[str, Any]) -> dict[str, Any]:
    """What ``kubetfx submit`` does with the parameters before it connects."""
    read = pipeline_file.read(path)
    return pipeline_file.typed_parameters(given, read.parameters, read.name, where=f"{read.path}: ")


def test_the_reader_gives_name_sdk_parameters_and_content_hash(path: Path) -> None:
    read = pipeline_file.read(path)
    assert read.name == "typed" and read.sdk_version == "kfp-2.14.3"
    assert sorted(read.parameters) == [
        "data",
        "epochs",
        "features",
        "name",
        "note",
        "options",
        "rate",
        "strict",
    ]
    assert read.version_name.startswith("sha256-") and len(read.version_name) == 19
    assert read.platform == {} and read.floor is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such pipeline file"),
        ("a: [1\n", ":2:1: not valid YAML"),
        ("a: 1\n", "not a compiled KFP pipeline (no pipelineInfo/root)"),
        (b"\xff\xfe", "not a text file"),
    ],
)
def test_unreadable_files_are_explained(tmp_path: Path, text: str | bytes | None, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        bad.write_bytes(text)
    elif text is not None:
        bad.write_text(text)
    for read in (pipeline_file.read, spec.load):
        with pytest.raises(PipelineSpecError, match=f"^{bad}"):
            read(bad)
        with pytest.raises(PipelineSpecError) as caught:
            read(bad)
        assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "raw", "typed"),
    [
        ("name", "hello", "hello"),
        ("name", "3", "3"),  # a string stays text
        ("epochs", "7", 7),
        ("epochs", 7.0, 7),  # a whole number from a file
        ("rate", "0.5", 0.5),
        ("rate", "2", 2.0),
        ("rate", 2, 2.0),
        ("features", '["x", "y"]', ["x", "y"]),
        ("features", ["x"], ["x"]),
        ("options", '{"k": 2}', {"k": 2}),
        *[("strict", spelled, True) for spelled in ("true", "True", "YES", "yes", "1", " true ")],
        *[("strict", spelled, False) for spelled in ("false", "FALSE", "no", "No", "0")],
        ("strict", True, True),
    ],
)
def test_each_type_is_coerced_the_same_for_run_and_submit(
    path: Path, name: str, raw: Any, typed: Any
) -> None:
    given = {"data": "d.csv", name: raw}
    ran, submitted = run_side(path, given), submit_side(path, given)
    assert ran[name] == typed and type(ran[name]) is type(typed)
    assert submitted[name] == typed and type(submitted[name]) is type(typed)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("epochs", "many", "parameter 'epochs' must be an integer, got 'many'"),
        ("epochs", "2.5", "parameter 'epochs' must be an integer, got '2.5'"),
        ("epochs", True, "parameter 'epochs' must be of type number_integer, got bool True"),
        ("rate", "fast", "parameter 'rate' must be a number, got 'fast'"),
        (
            "strict",
            "maybe",
            "parameter 'strict' must be true or false, got 'maybe' (accepted: true/false, yes/no",
        ),
        ("strict", "y", "parameter 'strict' must be true or false, got 'y'"),
        ("strict", 1, "parameter 'strict' must be of type boolean, got int 1"),
        ("features", '["x"', "parameter 'features' must be JSON (list), got '[\"x\"': Expecting"),
        ("features", '{"k": 1}', "parameter 'features' must be of type list, got dict"),
        ("options", "[1]", "parameter 'options' must be of type struct, got list"),
        ("name", 5, "parameter 'name' must be of type string, got int 5"),
    ],
)
def test_bad_values_name_the_parameter_for_run_and_submit(
    path: Path, name: str, raw: Any, message: str
) -> None:
    given = {"data": "d.csv", name: raw}
    with pytest.raises(ParameterError) as ran:
        run_side(path, given)
    with pytest.raises(ParameterError) as submitted:
        submit_side(path, given)
    assert str(ran.value) == message or str(ran.value).startswith(message)
    assert str(submitted.value) == f"{path}: {ran.value}"  # the same words, and which file


def test_unknown_and_missing_parameters(path: Path) -> None:
    for side in (run_side, submit_side):
        with pytest.raises(
            ParameterError, match="unknown parameter 'epoch' for pipeline 'typed'; it takes: data, ep"
        ):
            side(path, {"data": "d", "epoch": "1"})
        with pytest.raises(
            ParameterError, match="pipeline 'typed' needs parameter 'data' .*pass --param data=VALUE"
        ):
            side(path, {})


def test_run_fills_defaults_and_submit_leaves_them_to_the_server(path: Path) -> None:
    assert run_side(path, {"data": "d"}) == {
        "name": "world",
        "epochs": 3,
        "rate": 0.1,
        "strict": False,
        "features": ["a", "b"],
        "options": {"k": 1},
        "data": "d",
    }
    assert submit_side(path, {"data": "d", "strict": "yes"}) == {"data": "d", "strict": True}


def test_submit_accepts_what_run_accepts_before_connecting(path: Path) -> None:
    """``kubetfx submit`` takes ``yes`` for a boolean as ``kubetfx run`` does; it stops only at
    the (unreachable) server."""
    from kubetfx.cli import cli

    args = ["submit", str(path), "--experiment", "e", "--host", "http://127.0.0.1:9", "-p", "data=d"]
    accepted = CliRunner().invoke(cli, [*args, "-p", "strict=yes"])
    assert accepted.exit_code == 2 and "cannot reach the KFP API" in accepted.output
    refused = CliRunner().invoke(cli, [*args, "-p", "strict=maybe"])
    assert (
        refused.exit_code == 2 and "parameter 'strict' must be true or false, got 'maybe'" in refused.output
    )
