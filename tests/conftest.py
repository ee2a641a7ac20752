"""Shared fixtures: fixtures only, no sys.path edits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder with its own metadata store and pipeline root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBETFX_METADATA", f"sqlite:///{tmp_path}/mlmd.sqlite")
    monkeypatch.setenv("KUBETFX_PIPELINE_ROOT", str(tmp_path / "root"))
    return tmp_path


@pytest.fixture
def compile_to(tmp_path: Path):
    """Compile a pipeline function to YAML in the test's folder; returns the path."""
    from kfp import compiler

    def _compile(pipeline_func, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        compiler.Compiler().compile(pipeline_func, str(path))
        return path

    return _compile


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the kubetfx CLI as a user would; returns the completed process (text output)."""
    return subprocess.run(
        [KUBETFX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    """The run_cli helper as a fixture."""
    return run_cli
