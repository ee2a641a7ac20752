"""Plain-text summaries of runs for the terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tabulate import tabulate

from kubetfx.local.runner import RunResult


def when(timestamp: float | None) -> str:
    """A local time for a Unix timestamp."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else ""


def _shell_quote(text: str) -> str:
    return text if all(c.isalnum() or c in "/._-:" for c in text) else f"'{text}'"


def render(result: RunResult) -> str:
    """Per-task summary with timings, then where the lineage is and how to query it."""
    rows = [
        (t.name, t.state, f"{t.seconds:.1f}s" if t.seconds else "", t.message[:100])
        for t in result.tasks
        if t.kind != "dag" or t.state in ("SKIPPED", "NOT_RUN")
    ]
    metadata_flag = f" --metadata {_shell_quote(result.metadata)}"
    lines = [
        "",
        tabulate(rows, headers=["task", "state", "time", "note"]),
        "",
        f"Run {result.run_id} {result.state} in {result.seconds:.1f}s.",
        f"Outputs:  {result.pipeline_root}",
        f"Lineage:  {result.metadata}",
        "Query it:",
        f"  kubetfx runs{metadata_flag}",
        f"  kubetfx runs show {result.run_id}{metadata_flag}",
    ]
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
