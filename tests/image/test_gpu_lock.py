"""The GPU image's lock is the CPU image's lock plus NVIDIA's CUDA wheels, and nothing else.

Runs everywhere (no image, no network): it reads the two committed locks. The GPU image
(``kubetfx.images.GPU_IMAGE``) installs ``requirements/runtime-gpu.txt``; if any version
there differed from ``requirements/runtime.txt``, a Trainer on a GPU node would run code
the CPU tests never ran.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?==(?P<version>[^ ;\\]+)")


def _read_lock(path: Path) -> dict[str, dict]:
    """name -> {version, extras, hashes, via} for every pinned distribution of a uv lock."""
    entries: dict[str, dict] = {}
    current: dict | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            match = _PIN.match(line)
            assert match, f"{path.name}:{number}: not an exact pin: {line!r}"
            name = match["name"].lower().replace("_", "-")
            current = {"version": match["version"], "extras": match["extras"] or ""}
            current.update(hashes=set(), via="")
            entries[name] = current
        elif line.strip().startswith("--hash=") and current is not None:
            current["hashes"].add(line.strip().removeprefix("--hash=").rstrip(" \\"))
        elif line.strip().startswith("#") and current is not None:
            current["via"] += line.strip().lstrip("# ").removeprefix("via ") + "\n"
    return entries


CPU = _read_lock(REPO / "requirements/runtime.txt")
GPU = _read_lock(REPO / "requirements/runtime-gpu.txt")


def test_every_gpu_lock_entry_is_hash_pinned() -> None:
    assert len(GPU) > 200
    unhashed = sorted(name for name, entry in GPU.items() if not entry["hashes"])
    assert not unhashed, f"no --hash for {unhashed}; run make lock"


def test_the_gpu_lock_runs_the_very_versions_of_the_cpu_lock() -> None:
    missing = sorted(set(CPU) - set(GPU))
    assert not missing, f"in runtime.txt but not runtime-gpu.txt: {missing}"
    for name, entry in CPU.items():
        assert GPU[name]["version"] == entry["version"], name
        assert GPU[name]["hashes"] == entry["hashes"], f"{name}: other files than runtime.txt's"


def test_what_the_gpu_lock_adds_is_tensorflows_cuda_wheels() -> None:
    added = sorted(set(GPU) - set(CPU))
    assert added, "the GPU lock adds nothing: no CUDA libraries for TensorFlow"
    assert all(re.fullmatch(r"nvidia-[a-z-]+-cu12", name) for name in added), added
    for name in added:
        assert "tensorflow" in GPU[name]["via"].split(), f"{name} is not there for TensorFlow"
    # cuDNN and cuBLAS at least: without them TensorFlow sees no GPU.
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12"} <= set(added)
    assert GPU["tensorflow"]["extras"] == "[and-cuda]"


def test_the_gpu_extra_admits_the_locked_tensorflow() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (requirement,) = [Requirement(r) for r in project["optional-dependencies"]["gpu"]]
    assert requirement.name == "tensorflow" and requirement.extras == {"and-cuda"}
    assert requirement.specifier.contains(GPU["tensorflow"]["version"])
