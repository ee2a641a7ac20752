"""Which way imports may go, read from the source (ast: nothing is imported).

* The core (``src/kubetfx``) never imports a component or a pipeline, except in the few
  places whose job is to reach them: compiling, the CLI and the local runner's warm
  preload. Executors share what they need through the core (``kubetfx.artifacts`` for
  the artifact contract), never through each other.
* A component imports another component only where ``NEIGHBOURS`` declares it.
* Nothing imports ``kubetfx.benchmarks``: benchmarks are not part of the library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "kubetfx"
COMPONENTS = ROOT / "components"
PIPELINES = ROOT / "pipelines"

# Core modules (relative to src/kubetfx) allowed to import components or pipelines, and why.
CORE_MAY_IMPORT_COMPONENTS = {
    "compiling.py": "compiles every component and pipeline",
    "cli": "the operator's commands",
    "local/warm": "the warm worker preloads every executor",
    "local/cache.py": "the cache key fingerprints the installed code, components included",
}

# component -> the other components it may import. The ExampleValidator computes the
# serving sample's statistics exactly as StatisticsGen computes a split's; the Pusher reads
# serving_check's record, and runs the same check itself when it is given none.
NEIGHBOURS: dict[str, set[str]] = {"example_validator": {"statistics_gen"}, "pusher": {"serving_check"}}

# Folders that are not the library: skipped wherever they are.
NOT_LIBRARY = {"benchmarks", "__pycache__"}


def _modules(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if not NOT_LIBRARY.intersection(path.relative_to(root).parts):
            yield path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, at any depth (function-level ones too).
    ``from a import b`` counts as ``a.b`` (``b`` may be a module: ``from kubetfx import
    components``)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _component_of(module: str) -> str | None:
    if not _is_under(module, "kubetfx.components"):
        return None
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else ""


def _core_allowed(path: Path) -> bool:
    rel = path.relative_to(CORE).as_posix()
    return any(rel == allowed or rel.startswith(allowed + "/") for allowed in CORE_MAY_IMPORT_COMPONENTS)


def test_the_core_imports_no_component_or_pipeline_outside_the_listed_places() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _modules(CORE)
        if not _core_allowed(path)
        for line, module in _imports(path)
        if _is_under(module, "kubetfx.components") or _is_under(module, "kubetfx.pipelines")
    ]
    assert not found, "the core imports components or pipelines:\n" + "\n".join(found)


def test_components_import_only_their_declared_neighbours() -> None:
    found = []
    for path in _modules(COMPONENTS):
        rel = path.relative_to(COMPONENTS)
        if len(rel.parts) == 1:  # the package's index (components/__init__.py) lists them all
            continue
        own = rel.parts[0]
        for line, module in _imports(path):
            other = _component_of(module)
            if other is None or other in ("", own) or other in NEIGHBOURS.get(own, set()):
                continue
            found.append(f"{path.relative_to(ROOT)}:{line}: {module}")
        for line, module in _imports(path):
            if _is_under(module, "kubetfx.pipelines"):
                found.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not found, (
        "components import other components (share it through kubetfx.artifacts, or declare the "
        "neighbour in NEIGHBOURS):\n" + "\n".join(found)
    )


def test_declared_neighbours_exist() -> None:
    names = {p.name for p in COMPONENTS.iterdir() if (p / "component.py").is_file()}
    for component, neighbours in NEIGHBOURS.items():
        assert component in names
        assert neighbours <= names


@pytest.mark.parametrize("root", [CORE, COMPONENTS, PIPELINES], ids=["core", "components", "pipelines"])
def test_nothing_imports_the_benchmarks(root: Path) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _modules(root)
        for line, module in _imports(path)
        if _is_under(module, "kubetfx.benchmarks") or _is_under(module, "benchmarks")
    ]
    assert not found, "the library imports the benchmarks:\n" + "\n".join(found)


def test_the_checks_see_the_code() -> None:
    """A guard against a test that passes because it read nothing."""
    assert len(list(_modules(CORE))) > 20
    assert len(list(_modules(COMPONENTS))) > 20
    imports = [m for _, m in _imports(COMPONENTS / "example_validator" / "executor.py")]
    assert "kubetfx.components.statistics_gen.executor.statistics_of_table" in imports
