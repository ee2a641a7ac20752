"""Plain-text summaries of runs for the terminal."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from kubetfx.local.runner import RunResult


def when(timestamp: float | None) -> str:
    """A local time for a Unix timestamp."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else ""


def _shell_quote(text: str) -> str:
    return text if all(c.isalnum() or c in "/._-:" for c in text) else f"'{text}'"


def _note(task: Any) -> str:
    if task.message or task.state not in ("SUCCEEDED", "CACHED"):
        return task.message[:100]
    shown = [
        f"{k}={v}"
        for k, v in task.params.items()
        if k not in ("reason", "warnings") and (isinstance(v, int | float | bool) or len(str(v)) <= 16)
    ]
    if task.params.get("reason"):  # an output named "reason" says why, in full
        shown.append(str(task.params["reason"]))
    if task.params.get("warnings"):  # an output named "warnings" too
        shown.append(f"warnings: {task.params['warnings']}")
    return ", ".join(shown)[:200]


def _program() -> str:
    """How the user can call kubetfx again: by name if it is on PATH, else by path."""
    if shutil.which("kubetfx"):
        return "kubetfx"
    here = Path(sys.executable).with_name("kubetfx")
    relative = os.path.relpath(here)
    return str(here) if relative.startswith("..") else relative


def render(result: RunResult) -> str:
    """Per-task summary with timings, then where the lineage is and how to query it."""
    rows = [
        (t.name, t.state, f"{t.seconds:.1f}s" if t.seconds else "", _note(t))
        for t in result.tasks
        if t.kind != "dag" or t.state in ("SKIPPED", "NOT_RUN")
    ]
    metadata_flag = f" --metadata {_shell_quote(result.metadata)}"
    program = _program()
    lines = [
        "",
        tabulate(rows, headers=["task", "state", "time", "note"]),
        "",
        f"Run {result.run_id} {result.state} in {result.seconds:.1f}s.",
        f"Outputs:  {result.pipeline_root}",
        f"Lineage:  {result.metadata}",
        "Query it:",
        f"  {program} runs{metadata_flag}",
        f"  {program} runs show {result.run_id}{metadata_flag}",
    ]
    if ":***@" in result.metadata:
        lines.append("  (give the password through KUBETFX_METADATA_PASSWORD)")
    return "\n".join(lines)


def render_run(info: Any, tasks: list[Any]) -> str:
    """One run's tasks, states, timings and artifacts."""
    lines = [
        f"run {info.run_id}  pipeline {info.pipeline_name}  {info.state}  "
        f"started {when(info.start_time)}" + (f"  took {info.seconds:.1f}s" if info.seconds else ""),
        "",
    ]
    rows = []
    for task in tasks:
        note = task.properties.get("error") or task.properties.get("skipped_reason") or ""
        if task.properties.get("cached_execution_id"):
            note = f"cached: reuses execution {task.properties['cached_execution_id']}"
        rows.append(
            (
                task.execution_id,
                task.task_name,
                task.state,
                f"{task.seconds:.1f}s" if task.seconds else "",
                str(note)[:80],
            )
        )
    lines.append(tabulate(rows, headers=["execution", "task", "state", "time", "note"]))
    artifact_rows = [
        (task.task_name, key, artifact_id, type_name, uri)
        for task in tasks
        for key, items in task.outputs.items()
        for artifact_id, type_name, uri in items
    ]
    if artifact_rows:
        lines += ["", tabulate(artifact_rows, headers=["task", "output", "artifact", "type", "uri"])]
    return "\n".join(lines)
