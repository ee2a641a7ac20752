"""The embedded local runner for compiled KFP pipelines (see :mod:`kubetfx.local.runner`)."""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: the warm worker's client imports this package, and
# ``typing`` would cost it more than the rest of its imports.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from kubetfx.local.results import RunResult


def run_pipeline(
    pipeline_file: str | Path,
    *,
    params: dict[str, Any] | None = None,
    metadata: str | None = None,
    pipeline_root: str | None = None,
    cache: bool = True,
    max_parallel: int | None = None,
    echo: Callable[[str], None] | None = None,
    warm: bool | None = None,
) -> RunResult:
    """Run a compiled pipeline YAML locally and return what happened.

    Everything that can be checked before a run starts (the file, unsupported
    constructs, parameter names and types) is checked before any task runs.
    ``warm``: run kubetfx tasks through the warm worker (None: ``KUBETFX_WARM`` decides).
    """
    import os

    from kubetfx import storage
    from kubetfx.local.launch import start_worker_early
    from kubetfx.local.warm import enabled
    from kubetfx.settings import resolve_metadata_url, resolve_pipeline_root
    from kubetfx.taskenv import quiet_metadata

    quiet_metadata()  # as opening the lineage store would: before the snapshot below
    root = resolve_pipeline_root(pipeline_root)
    environ = dict(os.environ)  # what every task starts from (the warm worker is named after it)
    if enabled(warm):
        # First of all, before the runner's own imports (ML Metadata, the pipeline's
        # types): the worker's imports overlap with them, with loading the pipeline and
        # with the tasks that need no heavy library. (The runner checks again once the
        # file is parsed: this quick look at its text finds the usual case.)
        assigned = _task_command_env(pipeline_file)
        if assigned is not None:
            start_worker_early(environ, assigned, remote=storage.is_remote(root))
    from kubetfx.local import spec
    from kubetfx.local.runner import LocalRunner

    doc = spec.load(pipeline_file)
    values = spec.resolve_parameters(doc, params or {})
    runner = LocalRunner(
        doc,
        metadata_url=resolve_metadata_url(metadata),
        pipeline_root=root,
        cache=cache,
        max_parallel=max_parallel,
        echo=echo,
        warm=warm,
        environ=environ,
    )
    return runner.run(values)


def _task_command_env(pipeline_file: str | Path) -> dict[str, str] | None:
    """The variables the file's kubetfx task command sets (``_KFP_RUNTIME=true``: part of
    the warm worker's identity), or None if the file names no kubetfx task or cannot be
    read (``spec.load`` reports that)."""
    from kubetfx.local.launch import command_env

    try:
        with open(pipeline_file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return command_env(text)
