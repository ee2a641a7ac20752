"""What the wheel holds: the library, its components, pipelines and schemas; never the
benchmarks or maintenance scripts, which live beside it in the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "src", "components", "pipelines", "schemas")
# Every component folder of the tree, so a new component cannot be left out of the check.
COMPONENTS = tuple(sorted(path.parent.name for path in (REPO / "components").glob("*/component.py")))


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file names in a wheel built from a copy of the sources (the tree stays clean)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    # No build isolation: the environment's setuptools builds it, with no index to reach.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(root / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (root / "dist").glob("kubetfx-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_no_benchmarks_or_maintenance_scripts(wheel_files: list[str]) -> None:
    assert "kubetfx/__init__.py" in wheel_files
    assert not [n for n in wheel_files if "benchmarks" in n.split("/")]
    assert not [n for n in wheel_files if n.split("/")[-1] in ("lockaudit.py", "tfx_trainer_module.py")]
    assert not [n for n in wheel_files if n.split("/")[0] in ("benchmarks", "scripts", "tests")]


def test_the_wheel_holds_every_component_with_its_yaml(wheel_files: list[str]) -> None:
    for name in COMPONENTS:
        for part in ("__init__.py", "component.py", "component.yaml"):
            assert f"kubetfx/components/{name}/{part}" in wheel_files
    assert "kubetfx/pipelines/training/pipeline.yaml" in wheel_files


@pytest.mark.parametrize("name", COMPONENTS)
def test_every_component_is_exported_by_its_own_package(name: str) -> None:
    """``from kubetfx.components.<name> import <name>``, the same way for all of them."""
    import importlib

    package = importlib.import_module(f"kubetfx.components.{name}")
    assert package.__all__ == [name]
    assert getattr(package, name) is getattr(importlib.import_module("kubetfx.components"), name)
