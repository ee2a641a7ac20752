"""pyproject's explicit package list matches the folders (package-dir mapping cannot find them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = {
    "kubetfx": REPO / "src/kubetfx",
    "kubetfx.components": REPO / "components",
    "kubetfx.pipelines": REPO / "pipelines",
    "kubetfx.schemas": REPO / "schemas",
}


def test_packages_list_matches_the_tree() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = set(config["tool"]["setuptools"]["packages"])
    assert config["tool"]["setuptools"]["package-dir"] == {
        k: str(v.relative_to(REPO)) for k, v in ROOTS.items()
    }
    found = set()
    for name, root in ROOTS.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found == declared, f"add to / remove from pyproject packages: {sorted(found ^ declared)}"


def test_dependency_ranges_match_the_lock() -> None:
    """Every direct dependency's locked version lies in its declared range."""
    from packaging.requirements import Requirement

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = config["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in ("runtime", "dev"):
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    locked = {}
    for line in (REPO / "requirements/dev.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            locked[name.split("[")[0].lower().replace("_", "-")] = version  # "moto[server]"
    for req in requirements:
        version = locked.get(req.name.lower().replace("_", "-"))
        assert version, f"{req.name} is declared but not in requirements/dev.txt; run make lock"
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} outside {req.specifier}"
        )
