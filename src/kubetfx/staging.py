"""Atomic publishing of local output artifacts: write to a staging path, rename on success.

A kill or crash mid-write leaves only a ``*.partial-PID`` path behind, never a
half-written file or folder at the artifact's URI.
"""

from __future__ import annotations

import os
import re
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


def final_uri(uri: str) -> str:
    """The URI a staged output of this process will have once published: ``<uri>`` for
    :func:`stage_outputs`' ``<uri>.partial-PID``, keeping a suffix its writer gave it
    (``report.partial-PID.html`` becomes ``report.html``, as :func:`unstage_uris` does)."""
    return re.sub(rf"\.partial-{os.getpid()}(\.[^./]+)?$", lambda m: m.group(1) or "", uri)


def discard(staged: dict[str, str]) -> None:
    """Remove staging paths after a failure (with any suffix an executor gave them, as
    ``report.partial-PID.html``)."""
    for staging in staged:
        path = Path(staging)
        try:
            siblings = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]
        except OSError:
            siblings = []
        for found in [path, *siblings]:
            if found.is_dir():
                shutil.rmtree(found, ignore_errors=True)
            elif found.exists():
                found.unlink()


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
    """Rewrite staging URIs in an executor-output document back to the final URIs.

    An executor may add a suffix to its output's URI (KFP's launcher records the URI the
    executor output gives): ``report.partial-PID`` written as ``report.partial-PID.html``
    is published as ``report.html``; ``staged`` is updated to match.
    """
    for spec in document.get("artifacts", {}).values():
        for artifact in spec.get("artifacts", []):
            uri = artifact.get("uri", "")
            if uri and uri not in staged:
                for staging, final in list(staged.items()):
                    suffix = uri[len(staging) :]
                    if uri.startswith(staging) and suffix.startswith(".") and "/" not in suffix:
                        del staged[staging]
                        staged[uri] = final + suffix
                        break
            artifact["uri"] = staged.get(uri, uri)
