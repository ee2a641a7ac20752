"""Launching a task's command: its command line, and the launchers that run it.

As ``kfp.local`` has task handlers, the runner has launchers side by side:
:class:`ProcessLauncher` runs the command in a process of its own, as a container runs
it; :class:`WarmLauncher` runs the same command with the warm worker's ``python3`` shim
first on ``PATH`` (:mod:`kubetfx.local.warm`), so a kubetfx task runs in a process forked
from a worker that has the heavy libraries imported. Both write the task's output to its
log and return its exit status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from kubetfx.local import warm
from kubetfx.local.executor_input import ContainerSpec, ExecutorInput
from kubetfx.process import with_parent_death_signal
from kubetfx.settings import redact


@dataclass(frozen=True)
class Launch:
    """One attempt's process: its command line, environment, working folder and log."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: Path


class Launcher(Protocol):
    """Runs one attempt's command to its end; returns its exit status."""

    def launch(self, launch: Launch) -> int: ...


class ProcessLauncher:
    """The command in a process of its own, which dies with the runner."""

    def launch(self, launch: Launch) -> int:
        return self.run(launch)

    @staticmethod
    def run(launch: Launch, *, append: bool = False) -> int:
        """Run ``launch`` in a process of its own, its output to the log; its exit status."""
        with open(launch.log, "ab" if append else "wb") as log:
            process = subprocess.Popen(
                with_parent_death_signal(launch.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=launch.env,
                cwd=launch.cwd,
            )
            return process.wait()


# kubetfx components whose tasks import no heavy library (TensorFlow, TFDV, TFMA, Beam):
# hashing the input files, and reading, splitting and encoding the data (pyarrow, tfx-bsl's
# coder). While the warm worker still imports, they run in plain processes rather than
# wait for it. One that does import a heavy library is only slower, never wrong.
LIGHT_FUNCTIONS = frozenset({"data_fingerprint", "example_gen"})
# The first line of such a task's log.
LIGHT_NOTE = b"kubetfx: the warm worker is still importing; this light task runs in its own process\n"


def shared_environment(environ: dict[str, str], task_env: dict[str, str], *, remote: bool) -> dict[str, str]:
    """What the environment of every kubetfx task of a run holds besides its own
    per-task variables (:data:`kubetfx.taskenv.PER_TASK`): the warm worker that serves
    the run's tasks is named after it. Object-store mode: a pod's, for a task whose
    container and platform spec add no variables."""
    if remote:
        from kubetfx.local.pod import pod_environment
        from kubetfx.taskenv import TaskEnv

        return pod_environment(TaskEnv(), {}, {}, source=environ, extra=task_env)
    return {
        **environ,
        **task_env,
        # The local interpreter stands in for the image's python3.
        "PATH": os.path.dirname(sys.executable) + os.pathsep + environ.get("PATH", ""),
    }


def start_worker_early(environ: dict[str, str], task_env: dict[str, str], *, remote: bool) -> bool:
    """Start the warm worker that will serve the tasks of a run started from ``environ``
    (``task_env``: what the runner and the task's command add to it), without waiting for
    its imports; True if one was started (False: one serves or is
    starting already, or it cannot be used here: the tasks' clients decide as before).

    Its imports (TensorFlow, TFDV, TFMA, Beam: seconds) then overlap with the runner's own
    start (loading the pipeline, the lineage store) and with the tasks that need no heavy
    library, which run in plain processes until it serves (:class:`WarmLauncher`).
    """
    return warm.start_early(shared_environment(environ, task_env, remote=remote))


class WarmLauncher(ProcessLauncher):
    """The same command, its ``python3 -m kubetfx.task`` handed to a warm worker (which
    falls back to a plain process by itself when it cannot). A light task
    (:data:`LIGHT_FUNCTIONS`) runs in a plain process while the worker is still importing."""

    def launch(self, launch: Launch) -> int:
        shim = warm.shim_dir(launch.env["PATH"])
        if shim and is_light(launch.argv) and not warm.serving(_client_env(launch)):
            with open(launch.log, "wb") as log:
                log.write(LIGHT_NOTE)
            return self.run(launch, append=True)
        if shim:
            launch = replace(launch, env={**launch.env, "PATH": shim + os.pathsep + launch.env["PATH"]})
        return self.run(launch)


_ASSIGNED = re.compile(r"((?:\b[A-Za-z_][A-Za-z0-9_]*=[^\s'\"$;&|]*\s+)*)python3\s+-m\s+kubetfx\.task\b")


def command_env(text: str) -> dict[str, str] | None:
    """The variables a kubetfx task's shell command sets for ``python3 -m kubetfx.task``
    (``_KFP_RUNTIME=true ...``), from the first such command in ``text`` (a command line,
    or a whole pipeline file: YAML's line folding leaves the words as they are); None if
    ``text`` has no such command."""
    match = _ASSIGNED.search(text)
    if not match:
        return None
    return dict(word.split("=", 1) for word in match.group(1).split())


def _client_env(launch: Launch) -> dict[str, str]:
    """The environment the task's ``python3 -m kubetfx.task`` gets: the launch's, and what
    its shell command sets (the warm worker serving it is named after it)."""
    return {**launch.env, **(command_env(" ".join(launch.argv)) or {})}


def is_light(argv: list[str]) -> bool:
    """Whether a kubetfx task's command runs a component in :data:`LIGHT_FUNCTIONS`."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "--function_to_execute":
            return value in LIGHT_FUNCTIONS
    return False


def command_line(
    container: ContainerSpec,
    executor_input: ExecutorInput,
    *,
    pipeline_name: str,
    task_name: str,
    pipeline_root: str,
    run_id: str,
) -> list[str]:
    """The container's command and arguments with KFP's placeholders filled in."""
    from kubetfx.local.spec import import_kfp_runtime

    import_kfp_runtime()
    from kfp.local import placeholder_utils

    command = list(container.get("command", [])) + list(container.get("args", []))
    shielded, tokens = _shield_pipeline_placeholders(executor_input)
    argv = placeholder_utils.replace_placeholders(
        full_command=command,
        executor_input_dict=shielded,
        pipeline_resource_name=pipeline_name,
        task_resource_name=task_name,
        pipeline_root=pipeline_root,
        unique_pipeline_id=run_id,
    )
    return [_unshield(part, tokens) for part in argv]


_PIPELINE_PLACEHOLDER = re.compile(r"\{\{\$\.pipeline_[a-z_]+\}\}")


def _shield_pipeline_placeholders(executor_input: ExecutorInput) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of ``executor_input`` whose parameter values hide ``{{$.pipeline_*}}``
    placeholders from kfp.local, which would replace them inside longer strings; KFP's
    launcher replaces only input and output placeholders there, so they reach the task as
    written. Returns the copy and token -> placeholder for :func:`_unshield`."""
    tokens: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        token = f"@@kubetfx-placeholder-{uuid.uuid4().hex}@@"
        tokens[token] = match.group(0)
        return token

    shielded = json.loads(json.dumps(executor_input))
    values = shielded.get("inputs", {}).get("parameterValues", {})
    for key, value in values.items():
        if isinstance(value, str) and "{{$.pipeline_" in value:
            values[key] = _PIPELINE_PLACEHOLDER.sub(hide, value)
    return shielded, tokens


def _unshield(part: Any, tokens: dict[str, str]) -> Any:
    if not isinstance(part, str):
        return part
    for token, placeholder in tokens.items():
        part = part.replace(token, placeholder)
    return part


def failure_message(log_path: Path, returncode: int, state: dict[str, Any]) -> str:
    """Why an attempt failed: the task's own report, the signal that killed it, or the
    exit status and the log's last line."""
    if state.get("error"):
        return str(state["error"])
    if returncode < 0 or returncode in (128 + signal.SIGKILL, 128 + signal.SIGTERM):
        # sh reports a killed child as 128 + the signal number.
        number = -returncode if returncode < 0 else returncode - 128
        return f"killed by signal {signal.Signals(number).name}"
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    tail = lines[-1].strip() if lines else ""
    return redact(f"exit status {returncode}" + (f": {tail}" if tail else ""))
