"""The ``kubetfx`` command line.

Only the command being run is imported: ``kubetfx run`` loads the runner, ``kubetfx
compile`` loads kfp's compiler, and nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kubetfx import __version__
from kubetfx.errors import KubetfxError, MetadataStoreError
from kubetfx.settings import redact, resolve_metadata_url, resolve_pipeline_root, resolve_push_roots

METADATA_HELP = (
    "Metadata store: sqlite:///PATH, mysql://USER:PASSWORD@HOST:PORT/DB or grpc://HOST:PORT "
    "[env KUBETFX_METADATA; default ./.kubetfx/metadata.sqlite]."
)


class _Group(click.Group):
    """Turns kubetfx errors into one line on stderr and exit status 2 (1 for a failed run)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KubetfxError as err:
            click.echo(f"kubetfx: error: {redact(str(err))}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="kubetfx")
def cli() -> None:
    """kubetfx: TFX components for Kubeflow Pipelines, run locally or in a cluster."""


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    from kubetfx.errors import ParameterError

    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param {pair!r} is not NAME=VALUE")
        params[name.strip()] = value
    return params


def _existing_store(metadata: str | None) -> Any:
    """Open a store that must already exist: commands that only read lineage never create
    one (a mistyped path would otherwise make a folder and an empty store, and say "no
    runs")."""
    from kubetfx.lineage.store import connect

    return connect(_require_existing(metadata))


def _require_existing(metadata: str | None) -> str:
    """The store's URL, after checking that a store is there (nothing is created)."""
    from kubetfx.settings import parse_metadata_url

    url = resolve_metadata_url(metadata)
    config = parse_metadata_url(url)
    if config.kind == "sqlite" and not Path(config.path).is_file():
        where = Path(config.path)
        detail = (
            f"no file {where.name} in {where.parent}"
            if where.parent.is_dir()
            else f"folder {where.parent} does not exist"
        )
        raise MetadataStoreError(
            f"no metadata store at {config} ({detail}); check the path (--metadata or "
            "KUBETFX_METADATA), or run a pipeline first: `kubetfx run PIPELINE.yaml` creates it"
        )
    if config.kind == "mysql":
        _require_mysql_schema(config)
    return url


def _require_mysql_schema(config: Any) -> None:
    """Refuse a MySQL database that holds no ML Metadata tables (ML Metadata would create
    them). Connection failures are left to :func:`kubetfx.lineage.store.connect`, which
    explains them."""
    try:
        import pymysql
    except ImportError:  # pragma: no cover - PyMySQL comes with the runtime install
        return
    try:
        connection = pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password,
            connect_timeout=10,
        )
    except pymysql.err.MySQLError:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = 'MLMDEnv'",
                (config.database,),
            )
            (found,) = cursor.fetchone()
    finally:
        connection.close()
    if not found:
        raise MetadataStoreError(
            f"no metadata store at {config} (database {config.database!r} holds no ML Metadata "
            "tables); check the database name, or run a pipeline first: `kubetfx run` creates it"
        )


@cli.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline parameter (repeatable)."
)
@click.option(
    "--scope",
    metavar="NAME",
    help="Lineage scope of the run (the pipeline's lineage_scope parameter): baselines, drift and"
    " the data change check look only at runs of the same scope [default: the pipeline's name].",
)
@click.option("--metadata", help=METADATA_HELP)
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

    parsed = _parse_params(params)
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
    from kubetfx.cli_warm import left_running_note
    from kubetfx.lineage.store import connect
    from kubetfx.local.summary import program, recorded, render

    # Task times as lineage recorded them, the figures `kubetfx runs show` gives.
    executions = recorded(connect(resolve_metadata_url(metadata)), result.run_id)
    worker = "" if no_warm else left_running_note(program())
    click.echo(render(result, executions, worker))
    sys.exit(0 if result.state == "SUCCEEDED" else 1)


@cli.group(invoke_without_command=True)
@click.option("--metadata", help=METADATA_HELP)
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

    store = _existing_store(metadata)
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
@click.option("--metadata", help=METADATA_HELP)
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, metadata: str | None) -> None:
    """A run's tasks: states, timings and output artifacts with URIs. RUN_ID is a run id,
    a unique prefix of one, or a pipeline name (its newest run)."""
    from kubetfx.lineage.query import get_run, list_runs, run_tasks
    from kubetfx.local.summary import render_run

    store = _existing_store(metadata or (ctx.obj or {}).get("metadata"))
    try:
        info = get_run(store, run_id)
    except KubetfxError:
        newest = list_runs(store, pipeline=run_id, limit=1)
        if not newest:
            raise
        info = newest[0]
    click.echo(render_run(info, run_tasks(store, info.run_id)))


@cli.command("compile")
@click.argument("pipeline_name", required=False)
@click.option("--check", is_flag=True, help="Fail if a checked-in YAML is stale instead of writing it.")
@click.option(
    "--accelerator-profile",
    "profile",
    type=click.Path(dir_okay=False),
    help="Compile PIPELINE_NAME with this GPU profile, e.g. kustomize/overlays/gpu/accelerator-profile.yaml.",
)
@click.option(
    "-o", "--output", "out", type=click.Path(dir_okay=False), help="Where to write PIPELINE_NAME's YAML."
)
def compile_cmd(pipeline_name: str | None, check: bool, profile: str | None, out: str | None) -> None:
    """Regenerate every component.yaml and pipeline.yaml from its Python source, or compile
    one pipeline (a folder name under pipelines/) to --output, optionally for GPUs."""
    from kubetfx.compiling import compile_all, compile_one

    if pipeline_name or profile or out:
        if not (pipeline_name and out):
            raise KubetfxError(
                "give PIPELINE_NAME and --output to compile one pipeline (e.g. training -o gpu.yaml)"
            )
        click.echo(f"wrote {compile_one(pipeline_name, out, profile)}")
        return
    stale = compile_all(check=check)
    for path in stale:
        click.echo(f"{'stale' if check else 'wrote'} {path}")
    if check and stale:
        click.echo("run `make compile` (kubetfx compile) and commit the result", err=True)
        sys.exit(1)


@cli.command()
@click.argument("pipeline_name")
@click.option("--metadata", help=METADATA_HELP)
@click.option("--last", default=8, show_default=True, help="Runs to show.")
@click.option(
    "--plot", "plot_file", type=click.Path(dir_okay=False), help="Also draw the series to a PNG/SVG file."
)
def drift(pipeline_name: str, metadata: str | None, last: int, plot_file: str | None) -> None:
    """Each feature's drift distance across the runs of a pipeline (from lineage)."""
    from tabulate import tabulate

    from kubetfx.lineage.query import drift_series
    from kubetfx.local.summary import when
    from kubetfx.plots import drift_label

    store = _existing_store(metadata)
    points = drift_series(store, pipeline_name)
    failed = _failed_validations(store, pipeline_name)
    if not points and not failed:
        click.echo(
            f"no drift measured yet for {pipeline_name!r}: ExampleValidator needs earlier statistics "
            "of the same pipeline (a previous span, or earlier different data) to compare with"
        )
        return
    shown = points[-last:]
    since = shown[0].time if shown else 0.0
    shown_failed = [f for f in failed if f.time >= since] if shown else failed[-last:]
    features = sorted({f for p in shown for f in p.distances})
    headers = ["feature", "threshold"] + [f"{drift_label(p)}\n{when(p.time)}" for p in shown]
    rows = []
    for feature in features:
        limit = next((p.thresholds[feature] for p in reversed(shown) if feature in p.thresholds), None)
        cells = []
        for p in shown:
            value = p.distances.get(feature)
            mark = "*" if value is not None and limit is not None and value > limit else ""
            cells.append("" if value is None else f"{value:.4f}{mark}")
        rows.append([feature, "" if limit is None else f"{limit:g}", *cells])
    if rows:
        click.echo(tabulate(rows, headers=headers, disable_numparse=True))
        click.echo(
            "* over the schema's threshold. L-infinity for categorical features, Jensen-Shannon for numeric."
        )
    for f in shown_failed:
        click.echo(
            f"validation failed in run {f.run_id} at {when(f.time)} (execution {f.execution_id}): "
            f"no distances recorded; `kubetfx runs show {f.run_id}` says why"
        )
    if plot_file:
        from kubetfx.plots import plot_drift

        plot_drift(shown, plot_file, title=f"Drift of {pipeline_name}", failed=shown_failed)
        click.echo(f"wrote {plot_file}")


@dataclass
class _FailedValidation:
    execution_id: int
    run_id: str
    time: float


def _failed_validations(store: Any, pipeline_name: str) -> list[_FailedValidation]:
    """ExampleValidator executions of the pipeline that failed (they publish no anomalies,
    so the drift series has no point for them), oldest first."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage.record import PIPELINE_CONTEXT, props

    ctx = store.call(store.mlmd.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
    if ctx is None:
        return []
    found = []
    for execution in store.call(store.mlmd.get_executions_by_context, ctx.id):
        p = props(execution)
        if execution.last_known_state == pb.Execution.FAILED and str(p.get("task_name", "")).endswith(
            "example-validator"
        ):
            found.append(
                _FailedValidation(
                    execution_id=execution.id,
                    run_id=str(p.get("run_id", "")),
                    time=float(p.get("end_time") or execution.create_time_since_epoch / 1000),
                )
            )
    return sorted(found, key=lambda f: (f.time, f.execution_id))


@cli.group()
def lineage() -> None:
    """Ask lineage questions: what made this model, what did this data touch."""


@lineage.command("model")
@click.argument("ref")
@click.option("--metadata", help=METADATA_HELP)
def lineage_model(ref: str, metadata: str | None) -> None:
    """Provenance: everything upstream of an artifact (id or URI), with runs, params and code."""
    from kubetfx.lineage.graph import MLMDLineage, render_tree

    source = MLMDLineage(_existing_store(metadata))
    click.echo(render_tree(source.walk(ref, "up"), "up"))


@lineage.command("dataset")
@click.argument("ref")
@click.option("--metadata", help=METADATA_HELP)
def lineage_dataset(ref: str, metadata: str | None) -> None:
    """Impact: everything downstream of data (an Examples id or URI, a source URI, or span=N):
    models trained on it, their evaluations, and which were pushed where."""
    from kubetfx.lineage.graph import MLMDLineage, render_tree

    source = MLMDLineage(_existing_store(metadata))
    # A data source or a span may have been read by many runs: follow every Examples
    # artifact made from it (an artifact id or URI names exactly one).
    roots = [] if ref.isdigit() else source.examples_from(ref)
    roots = roots or [source.resolve(ref)]
    models: dict[int, str] = {}
    pushed: set[str] = set()
    for root in roots:
        graph = source.walk(str(root.id), "down")
        click.echo(render_tree(graph, "down") + "\n")
        for node in graph.nodes.values():
            if node.kind == "artifact" and node.type == "system.Model":
                models[node.id] = redact(node.label)
            if node.kind == "artifact" and node.properties.get("pushed") in (1, True):
                p = node.properties
                pushed.add(f"{p.get('model_name')}:{p.get('version')} at {redact(str(p.get('destination')))}")
    followed = ", ".join(f"artifact {r.id} ({redact(r.label)})" for r in roots)
    click.echo(f"examples followed: {followed}")
    trained = "; ".join(f"model artifact {i} ({uri})" for i, uri in sorted(models.items()))
    click.echo(f"models trained on it: {trained or 'none'}")
    click.echo("pushed: " + ("; ".join(sorted(pushed)) or "none"))


@lineage.command("graph")
@click.argument("ref")
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="FILE.svg, .png or .pdf"
)
@click.option("--downstream", is_flag=True, help="Draw what came from REF instead of what made it.")
@click.option("--metadata", help=METADATA_HELP)
def lineage_graph(ref: str, out: str, downstream: bool, metadata: str | None) -> None:
    """Draw the provenance graph of an artifact (artifacts, executions and events)."""
    from kubetfx.lineage.graph import MLMDLineage, draw

    source = MLMDLineage(_existing_store(metadata))
    direction = "down" if downstream else "up"
    graph = source.walk(ref, direction)
    root = graph.nodes[graph.root]
    title = f"{'impact' if downstream else 'provenance'} of {root.type} #{root.id}"
    click.echo(f"wrote {draw(graph, out, title)} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")


@lineage.command("pushes")
@click.argument("model_name", required=False, default="")
@click.option("--metadata", help=METADATA_HELP)
def lineage_pushes(model_name: str, metadata: str | None) -> None:
    """Every push and rollback, newest first (MODEL_NAME:VERSION refs for the other commands)."""
    from tabulate import tabulate

    from kubetfx.lineage.graph import MLMDLineage

    pushes = MLMDLineage(_existing_store(metadata)).pushes(model_name)
    if not pushes:
        raise KubetfxError(f"no pushes{' of ' + repr(model_name) if model_name else ''} are recorded yet")
    rows = [
        [
            f"{p.properties.get('model_name')}:{p.properties.get('version')}",
            p.properties.get("pushed_at", ""),
            "rollback to " + str(p.properties.get("rolled_back_to"))
            if p.properties.get("rollback")
            else "push",
            redact(str(p.properties.get("destination", ""))),
            p.id,
        ]
        for p in pushes
    ]
    click.echo(tabulate(rows, headers=["model", "pushed at", "how", "destination", "artifact"]))


@cli.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option(
    "-o", "--output", "out", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout."
)
@click.option("--metadata", help=METADATA_HELP)
def audit(ref: str, fmt: str, out: str | None, metadata: str | None) -> None:
    """The record of a pushed model (MODEL_NAME:VERSION): data, schema, code, parameters,
    evaluation per slice, blessing and its reasons, baseline, push time and place."""
    from kubetfx.lineage import audit as audit_lib
    from kubetfx.lineage.graph import MLMDLineage

    record = audit_lib.build(MLMDLineage(_existing_store(metadata)), ref)
    text = audit_lib.to_html(record) if fmt == "html" else audit_lib.to_markdown(record)
    if out:
        with open(out, "w") as f:
            f.write(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@cli.group()
def schema() -> None:
    """Look at and evolve schemas."""


@schema.command("diff")
@click.argument("schema_file")
@click.option(
    "--data", "data_uri", required=True, help="CSV/Parquet file, folder or {SPAN} pattern to compare with."
)
@click.option("--write", "out", type=click.Path(dir_okay=False), help="Write the proposed schema here.")
def schema_diff(schema_file: str, data_uri: str, out: str | None) -> None:
    """Show what SCHEMA_FILE would need to change to accept DATA (TFDV's update_schema)."""
    import time

    began = time.monotonic()

    def progress(message: str) -> None:
        click.echo(f"[{time.monotonic() - began:5.1f}s] {message}", err=True)

    progress("loading TensorFlow Data Validation")
    with _quiet_libraries():
        import tensorflow_data_validation  # noqa: F401 - loaded here, quietly, with its progress line

        from kubetfx.schema_tools import propose
    progress(f"reading {data_uri}, computing its statistics and comparing them with {schema_file}")
    with _quiet_libraries():
        diff, proposed = propose(schema_file, data_uri)
    progress("done")
    if not diff:
        click.echo(f"{schema_file} already accepts {data_uri}: no change proposed")
    else:
        click.echo(diff)
    if out:
        with open(out, "w") as f:
            f.write(proposed)
        click.echo(f"wrote the proposed schema to {out}; review it, then copy the changes you accept")


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hold back what TensorFlow, TFDV and Beam print while they load and run (C++ log
    lines, deprecation warnings): the user sees kubetfx's progress and result. What was
    held back is shown if the step fails with anything but a kubetfx error (which says
    itself what is wrong)."""
    import logging
    import os
    import tempfile
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except KubetfxError:
            raise
        except BaseException:
            sys.stderr.flush()
            held.seek(0)
            os.write(saved, held.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            root.setLevel(level)


@cli.command()
@click.argument("model_name")
@click.option("--to", "to_version", type=int, required=True, help="The earlier version to serve again.")
@click.option(
    "--destination",
    help="Where the model's versions are (under a root of KUBETFX_PUSH_ROOT) "
    "[default: where version VERSION was pushed].",
)
@click.option("--metadata", help=METADATA_HELP)
def rollback(model_name: str, to_version: int, destination: str | None, metadata: str | None) -> None:
    """Serve an earlier version again: republish it as a new, highest version, recorded in lineage."""
    from kubetfx.lineage.rollback import rollback as roll_back

    store = _existing_store(metadata)
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


@cli.group()
def metadata() -> None:
    """Manage the metadata store."""


@metadata.command("upgrade")
@click.option("--metadata", "url", help=METADATA_HELP)
@click.confirmation_option(
    prompt="Upgrade the metadata store's schema? Other tools sharing it must support the new schema."
)
def metadata_upgrade(url: str | None) -> None:
    """Upgrade an existing store's schema to this ML Metadata version (explicit, never automatic)."""
    from kubetfx.lineage.store import connect

    store = connect(_require_existing(url), upgrade=True)  # upgrading never creates a store
    click.echo(f"{store} is at the schema of this ML Metadata version")


def _register_cluster_commands() -> None:
    from kubetfx.cli_kfp import register
    from kubetfx.cli_warm import register as register_worker

    register(cli)
    register_worker(cli)


_register_cluster_commands()


def main() -> None:
    """Console entry point."""
    cli(prog_name="kubetfx")


if __name__ == "__main__":
    main()
