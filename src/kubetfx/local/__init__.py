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
    from kubetfx.local import spec
    from kubetfx.local.runner import LocalRunner
    from kubetfx.settings import resolve_metadata_url, resolve_pipeline_root

    doc = spec.load(pipeline_file)
    values = spec.resolve_parameters(doc, params or {})
    runner = LocalRunner(
        doc,
        metadata_url=resolve_metadata_url(metadata),
        pipeline_root=resolve_pipeline_root(pipeline_root),
        cache=cache,
        max_parallel=max_parallel,
        echo=echo,
        warm=warm,
    )
    return runner.run(values)


__all__ = ["run_pipeline"]
