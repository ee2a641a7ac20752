"""Plain-text summaries of runs for the terminal."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from kubetfx.local.results import RunResult, TaskResult


def when(timestamp: float | None) -> str:
    """A local time for a Unix timestamp."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else ""


def _shell_quote(text: str) -> str:
    return text if all(c.isalnum() or c in "/._-:" for c in text) else f"'{text}'"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _shown(key: str, value: Any) -> bool:
    """Outputs worth a place in the note: not empty, not an id of nothing (``model_id=0``)."""
    if value is None or value == "":
        return False
    if key.endswith("_id") and value in (0, "0"):
        return False
    return isinstance(value, int | float | bool) or len(str(value)) <= 16


def _note(task: TaskResult) -> str:
    """Why a task failed or was skipped, in full; else its small outputs (never cut: a
    cut note would hide the end of a path or a message, and its length would depend on
    where the checkout is)."""
    if task.message or task.state not in ("SUCCEEDED", "CACHED"):
        return _one_line(task.message)
    shown = [
        f"{k}={_value(v)}"
        for k, v in task.params.items()
        if k not in ("reason", "warnings", "stopped") and _shown(k, v)
    ]
    if task.params.get("stopped"):  # how training ended (the Trainer's): "early 14/30, best 9"
        shown.append(f"stopped {_one_line(task.params['stopped'])}")
    if task.params.get("reason"):  # an output named "reason" says why, in full
        shown.append(_one_line(task.params["reason"]))
    if task.params.get("warnings"):  # an output named "warnings" too
        shown.append(f"warnings: {_one_line(task.params['warnings'])}")
    return ", ".join(shown)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def program() -> str:
    """How the user can call kubetfx again: by name if it is on PATH, else by path."""
    if shutil.which("kubetfx"):
        return "kubetfx"
    here = Path(sys.executable).with_name("kubetfx")
    relative = os.path.relpath(here)
    return str(here) if relative.startswith("..") else relative


def recorded(store: Any, run_id: str) -> dict[int, dict[str, Any]]:
    """The properties lineage holds for each execution of a run, by execution id."""
    from kubetfx.lineage.query import run_tasks

    return {task.execution_id: task.properties for task in run_tasks(store, run_id)}


def _recorded_or_none(result: RunResult) -> dict[int, dict[str, Any]]:
    """The run's executions from its store, for callers that did not pass them (a notebook);
    nothing when the store's address was redacted (a password) or cannot be read."""
    if "***" in result.metadata:
        return {}
    try:
        from kubetfx.lineage.store import connect

        return recorded(connect(result.metadata), result.run_id)
    except Exception:  # noqa: BLE001 - the summary is still useful without task times
        return {}


def _seconds(seconds: float | None) -> str:
    return f"{seconds:.1f}s" if seconds is not None else ""


def render(
    result: RunResult,
    executions: dict[int, dict[str, Any]] | None = None,
    worker: str = "",
) -> str:
    """Per-task summary with timings, then where the lineage is and how to query it.

    ``executions`` (from :func:`recorded`; read from the run's store when not given) gives
    each task's time as lineage recorded it, so the summary and ``kubetfx runs show`` give
    the same figure; ``worker`` is a note on the warm worker left running.
    """
    from kubetfx.lineage.graph import task_seconds

    if executions is None:
        executions = _recorded_or_none(result)
    rows = []
    for t in result.tasks:
        if t.kind == "dag" and t.state not in ("SKIPPED", "NOT_RUN"):
            continue
        props = executions.get(t.execution_id) if t.execution_id is not None else None
        seconds = task_seconds(props) if props is not None else None
        rows.append((t.name, t.state, _seconds(seconds), _note(t)))
    metadata_flag = f" --metadata {_shell_quote(result.metadata)}"
    command = program()
    lines = [
        "",
        tabulate(rows, headers=["task", "state", "time", "note"]),
        "",
        f"Run {result.run_id} {result.state} in {result.seconds:.1f}s "
        "(task times: each execution as lineage recorded it).",
        f"Outputs:  {result.pipeline_root}",
        f"Lineage:  {result.metadata}",
        "Query it:",
        f"  {command} runs{metadata_flag}",
        f"  {command} runs show {result.run_id}{metadata_flag}",
    ]
    if ":***@" in result.metadata:
        lines.append("  (give the password through KUBETFX_METADATA_PASSWORD)")
    unpushed = {
        t.name: str(executions[t.execution_id]["metrics_push"])
        for t in result.tasks
        if t.state in ("SUCCEEDED", "FAILED")  # a cached task ran (and pushed) in another run
        and t.execution_id is not None
        and executions.get(t.execution_id, {}).get("metrics_push")
    }
    if unpushed:
        first = next(iter(unpushed.values()))
        lines.append(
            f"Metrics:  {len(unpushed)} task(s) could not push theirs ({', '.join(unpushed)}): {first}"
            " (the run is not affected)"
        )
    if worker:
        lines += ["", worker]
    return "\n".join(lines)


def render_run(info: Any, tasks: list[Any]) -> str:
    """One run's tasks, states, timings and artifacts, in the run summary's vocabulary."""
    from kubetfx.lineage.graph import task_seconds, task_state

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
                task_state(task.state, task.properties),
                _seconds(task_seconds(task.properties)),
                _one_line(note),  # in full: an error cut short hides what to fix
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
