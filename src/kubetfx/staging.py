"""Atomic publishing of local output artifacts: write to a staging path, rename on success.

A kill or crash mid-write leaves only a ``*.partial-PID`` path behind, never a
half-written file or folder at the artifact's URI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def is_local(uri: str) -> bool:
    """Whether an artifact URI is a path on this machine."""
    return bool(uri) and "://" not in uri


def stage_outputs(executor_input: dict[str, Any]) -> dict[str, str]:
    """Point local output artifacts at staging paths in place; returns staging -> final."""
    staged: dict[str, str] = {}
    for spec in executor_input.get("outputs", {}).get("artifacts", {}).values():
        for artifact in spec.get("artifacts", []):
            uri = artifact.get("uri", "")
            if is_local(uri):
                staging = f"{uri}.partial-{os.getpid()}"
                staged[staging] = uri
                artifact["uri"] = staging
    return staged


def discard(staged: dict[str, str]) -> None:
    """Remove staging paths after a failure."""
    for staging in staged:
        path = Path(staging)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def publish(staged: dict[str, str]) -> None:
    """Rename every staging path to its final URI (an empty folder if nothing was written)."""
    for staging, final in staged.items():
        src, dst = Path(staging), Path(final)
        if not src.exists():
            src.mkdir(parents=True, exist_ok=True)
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        os.replace(src, dst)


def unstage_uris(document: dict[str, Any], staged: dict[str, str]) -> None:
    """Rewrite staging URIs in an executor-output document back to the final URIs."""
    for spec in document.get("artifacts", {}).values():
        for artifact in spec.get("artifacts", []):
            uri = artifact.get("uri", "")
            artifact["uri"] = staged.get(uri, uri)
