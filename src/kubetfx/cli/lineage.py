"""The commands that read lineage: ``drift``, ``lineage``, ``audit`` and ``rollback``.

What they show is computed by the lineage API (:mod:`kubetfx.lineage.summaries`,
:mod:`kubetfx.lineage.graph`, :mod:`kubetfx.lineage.audit`); these commands only format it.
"""

from __future__ import annotations

from typing import Any

import click

from kubetfx.cli.options import metadata_option
from kubetfx.cli.store import existing_store
from kubetfx.errors import KubetfxError
from kubetfx.settings import redact, resolve_push_roots


@click.command()
@click.argument("pipeline_name")
@metadata_option
@click.option("--last", default=8, show_default=True, help="Runs to show.")
@click.option(
    "--plot", "plot_file", type=click.Path(dir_okay=False), help="Also draw the series to a PNG/SVG file."
)
def drift(pipeline_name: str, metadata: str | None, last: int, plot_file: str | None) -> None:
    """Each feature's drift distance across the runs of a pipeline (from lineage)."""
    from tabulate import tabulate

    from kubetfx.lineage.summaries import drift_table
    from kubetfx.local.summary import when
    from kubetfx.plots import drift_label

    table = drift_table(existing_store(metadata), pipeline_name, last)
    if table.empty:
        click.echo(
            f"no drift measured yet for {pipeline_name!r}: ExampleValidator needs earlier statistics "
            "of the same pipeline (a previous span, or earlier different data) to compare with"
        )
        return
    headers = ["feature", "threshold"] + [
        f"{drift_label(p)}\n{when(p.time)}" + ("\nvalidation failed" if i in table.failed_points else "")
        for i, p in enumerate(table.points)
    ]
    rows = []
    for row in table.rows:
        cells = [
            "" if value is None else f"{value:.4f}{'*' if row.over(i) else ''}"
            for i, value in enumerate(row.distances)
        ]
        rows.append([row.feature, "" if row.threshold is None else f"{row.threshold:g}", *cells])
    if rows:
        click.echo(tabulate(rows, headers=headers, disable_numparse=True))
        click.echo(
            "* over the schema's threshold. L-infinity for categorical features, Jensen-Shannon for numeric."
        )
    for f in table.failed:
        click.echo(
            f"validation failed in run {f.run_id} at {when(f.time)} (execution {f.execution_id}): "
            f"no distances recorded; `kubetfx runs show {f.run_id}` says why"
        )
    if plot_file:
        from kubetfx.plots import plot_drift

        plot_drift(table.points, plot_file, title=f"Drift of {pipeline_name}", failed=table.failed)
        click.echo(f"wrote {plot_file}")


@click.group()
def lineage() -> None:
    """Ask lineage questions: what made this model, what did this data touch."""


@lineage.command("model")
@click.argument("ref")
@metadata_option
def lineage_model(ref: str, metadata: str | None) -> None:
    """Provenance: everything upstream of an artifact (id or URI), with runs, params and code."""
    from kubetfx.lineage.graph import MLMDLineage, render_tree

    source = MLMDLineage(existing_store(metadata))
    click.echo(render_tree(source.walk(ref, "up"), "up"))


@lineage.command("dataset")
@click.argument("ref")
@metadata_option
def lineage_dataset(ref: str, metadata: str | None) -> None:
    """Impact: everything downstream of data (an Examples id or URI, a source URI, or span=N):
    models trained on it, their evaluations, and which were pushed where."""
    from kubetfx.lineage.graph import MLMDLineage, render_tree
    from kubetfx.lineage.summaries import dataset_impact

    impact = dataset_impact(MLMDLineage(existing_store(metadata)), ref)
    for graph in impact.graphs:
        click.echo(render_tree(graph, "down") + "\n")
    followed = ", ".join(f"artifact {r.id} ({redact(r.label)})" for r in impact.roots)
    click.echo(f"examples followed: {followed}")
    trained = "; ".join(f"model artifact {i} ({redact(uri)})" for i, uri in sorted(impact.models.items()))
    click.echo(f"models trained on it: {trained or 'none'}")
    pushed = {f"{p.model} at {redact(p.destination)}" for p in impact.pushes}
    click.echo("pushed: " + ("; ".join(sorted(pushed)) or "none"))


@lineage.command("graph")
@click.argument("ref")
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="FILE.svg, .png or .pdf"
)
@click.option("--downstream", is_flag=True, help="Draw what came from REF instead of what made it.")
@metadata_option
def lineage_graph(ref: str, out: str, downstream: bool, metadata: str | None) -> None:
    """Draw the provenance graph of an artifact (artifacts, executions and events)."""
    from kubetfx.lineage.graph import MLMDLineage, draw

    source = MLMDLineage(existing_store(metadata))
    direction = "down" if downstream else "up"
    graph = source.walk(ref, direction)
    root = graph.nodes[graph.root]
    title = f"{'impact' if downstream else 'provenance'} of {root.type} #{root.id}"
    click.echo(f"wrote {draw(graph, out, title)} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")


@lineage.command("pushes")
@click.argument("model_name", required=False, default="")
@metadata_option
def lineage_pushes(model_name: str, metadata: str | None) -> None:
    """Every push and rollback, newest first (MODEL_NAME:VERSION refs for the other commands)."""
    from tabulate import tabulate

    from kubetfx.lineage.graph import MLMDLineage
    from kubetfx.lineage.summaries import push_history

    store = existing_store(metadata)
    pushes = push_history(MLMDLineage(store), model_name)
    if not pushes:
        raise KubetfxError(f"no pushes{' of ' + repr(model_name) if model_name else ''} are recorded yet")
    rows = [
        [
            p.model,
            p.pushed_at,
            f"rollback to {p.rolled_back_to}" if p.rollback else "push",
            redact(p.destination),
            p.artifact_id,
            _rollout_of(store, p.model),
            _aliases_now(store, p.model),
        ]
        for p in pushes
    ]
    headers = ["model", "pushed at", "how", "destination", "artifact", "canary rollout", "aliases now"]
    click.echo(tabulate(rows, headers=headers))


def _name_and_version(ref: str) -> tuple[str, int] | None:
    """MODEL:VERSION of a push row as (model, version); None for any other ref."""
    name, _, version = ref.rpartition(":")
    return (name, int(version)) if version.isdigit() else None


def _aliases_now(store: Any, ref: str) -> str:
    """The aliases (``production``, ``candidate``...) that name MODEL:VERSION now."""
    from kubetfx.lineage.aliases import aliases_of

    pushed = _name_and_version(ref)
    return ", ".join(aliases_of(store, *pushed)) if pushed else ""


def _rollout_of(store: Any, ref: str) -> str:
    """The latest canary rollout of MODEL:VERSION, in a few words ("" if none)."""
    from kubetfx.lineage.rollouts import rollouts_of

    pushed = _name_and_version(ref)
    if pushed is None:
        return ""
    name, version = pushed
    found = [r for r in rollouts_of(store, name, version) if r.canary_version == version]
    if not found:
        return ""
    latest = found[0]
    last = latest.steps[-1].percent if latest.steps else 0
    state = latest.state.replace("_", " ")
    return (
        f"{state} at {last}% (from {latest.stable_version})"
        if latest.state != "promoted"
        else f"promoted (from {latest.stable_version})"
    )


@click.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option(
    "-o", "--output", "out", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout."
)
@metadata_option
def audit(ref: str, fmt: str, out: str | None, metadata: str | None) -> None:
    """The record of a pushed model (MODEL_NAME:VERSION): data, schema, code, parameters,
    evaluation per slice, blessing and its reasons, baseline, push time and place."""
    from kubetfx.lineage import audit as audit_lib
    from kubetfx.lineage.graph import MLMDLineage

    record = audit_lib.build(MLMDLineage(existing_store(metadata)), ref)
    text = audit_lib.to_html(record) if fmt == "html" else audit_lib.to_markdown(record)
    if out:
        with open(out, "w") as f:
            f.write(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@click.command()
@click.argument("model_name")
@click.option("--to", "to_version", type=int, required=True, help="The earlier version to serve again.")
@click.option(
    "--destination",
    help="Where the model's versions are (under a root of KUBETFX_PUSH_ROOT) "
    "[default: where version VERSION was pushed].",
)
@metadata_option
def rollback(model_name: str, to_version: int, destination: str | None, metadata: str | None) -> None:
    """Serve an earlier version again: republish it as a new, highest version, recorded in lineage."""
    from kubetfx.lineage.rollback import rollback as roll_back

    store = existing_store(metadata)
    done = roll_back(
        store, model_name, to_version, destination=destination, allowed_roots=resolve_push_roots()
    )
    click.echo(
        f"rolled {model_name} back to version {to_version}: published its files as version "
        f"{done.published.version} at {done.published.uri}"
    )
    click.echo(
        f"lineage: rollback execution {done.execution_id}, pushed model {done.pushed_model_id}, "
        f"model {done.model_id} is now the served model (the Evaluator's baseline)"
    )
