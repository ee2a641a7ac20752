"""``kubetfx run`` and ``kubetfx runs``: run a pipeline on this machine, list and show runs."""

from __future__ import annotations

import sys

import click

from kubetfx.cli.options import metadata_option, param_option, parse_params
from kubetfx.cli.store import existing_store
from kubetfx.errors import KubetfxError
from kubetfx.settings import resolve_metadata_url, resolve_pipeline_root


@click.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@param_option
@click.option(
    "--scope",
    metavar="NAME",
    help="Lineage scope of the run (the pipeline's lineage_scope parameter): baselines, drift and"
    " the data change check look only at runs of the same scope [default: the pipeline's name].",
)
@metadata_option
@click.option(
    "--pipeline-root", help="Where outputs go [env KUBETFX_PIPELINE_ROOT; default ./.kubetfx/pipeline_root]."
)
@click.option("--no-cache", is_flag=True, help="Run every task, reusing nothing.")
@click.option("--parallel", type=int, default=None, help="Tasks run at once [default: CPU count].")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option(
    "--no-warm",
    is_flag=True,
    help="Start every task as a fresh process, not from the warm worker [env KUBETFX_WARM=0].",
)
def run(
    pipeline_file: str,
    params: tuple[str, ...],
    scope: str | None,
    metadata: str | None,
    pipeline_root: str | None,
    no_cache: bool,
    parallel: int | None,
    quiet: bool,
    no_warm: bool,
) -> None:
    """Run a compiled KFP pipeline YAML on this machine."""
    from kubetfx.errors import ParameterError
    from kubetfx.identity import SCOPE_PARAMETER
    from kubetfx.local import run_pipeline

    parsed = parse_params(params)
    if scope is not None:
        if parsed.get(SCOPE_PARAMETER, scope) != scope:
            raise ParameterError(f"--scope {scope!r} and --param {SCOPE_PARAMETER}= disagree; give one")
        parsed[SCOPE_PARAMETER] = scope
    result = run_pipeline(
        pipeline_file,
        params=parsed,
        metadata=resolve_metadata_url(metadata),
        pipeline_root=resolve_pipeline_root(pipeline_root),
        cache=not no_cache,
        max_parallel=parallel,
        echo=(lambda _line: None) if quiet else None,
        warm=False if no_warm else None,
    )
    from kubetfx.cli.worker import left_running_note
    from kubetfx.lineage.store import connect
    from kubetfx.local.summary import program, recorded, render

    # Task times as lineage recorded them, the figures `kubetfx runs show` gives.
    executions = recorded(connect(resolve_metadata_url(metadata)), result.run_id)
    worker = "" if no_warm else left_running_note(program())
    click.echo(render(result, executions, worker))
    sys.exit(0 if result.state == "SUCCEEDED" else 1)


@click.group(invoke_without_command=True)
@metadata_option
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def runs(ctx: click.Context, metadata: str | None, pipeline: str | None, limit: int) -> None:
    """List runs, newest first (`kubetfx runs show RUN` for one run's tasks)."""
    ctx.obj = {"metadata": metadata}
    if ctx.invoked_subcommand:
        return
    from tabulate import tabulate

    from kubetfx.lineage.query import list_runs
    from kubetfx.local.summary import when

    store = existing_store(metadata)
    found = list_runs(store, pipeline=pipeline, limit=limit)
    if not found:
        click.echo(f"no runs in {store}; start one with `kubetfx run PIPELINE.yaml`")
        return
    rows = [
        (r.run_id, r.pipeline_name, r.state, when(r.start_time), f"{r.seconds:.1f}s" if r.seconds else "")
        for r in found
    ]
    click.echo(tabulate(rows, headers=["run", "pipeline", "state", "started", "took"]))


@runs.command("show")
@click.argument("run_id")
@metadata_option
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, metadata: str | None) -> None:
    """A run's tasks: states, timings and output artifacts with URIs. RUN_ID is a run id,
    a unique prefix of one, or a pipeline name (its newest run)."""
    from kubetfx.lineage.query import get_run, list_runs, run_tasks
    from kubetfx.local.summary import render_run

    store = existing_store(metadata or (ctx.obj or {}).get("metadata"))
    try:
        info = get_run(store, run_id)
    except KubetfxError:
        newest = list_runs(store, pipeline=run_id, limit=1)
        if not newest:
            raise
        info = newest[0]
    click.echo(render_run(info, run_tasks(store, info.run_id)))
