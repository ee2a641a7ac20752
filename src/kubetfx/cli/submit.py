"""``kubetfx submit``: upload a compiled pipeline to a KFP API server and start a run.

Documented in docs/submit-and-schedule.md; the client is :mod:`kubetfx.kfpclient`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubetfx.cli.options import param_option, parse_params
from kubetfx.cli.server import connect, report_versions, server_options, service_account_option

if TYPE_CHECKING:
    from kubetfx.kfpclient.connection import Connection


@click.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--experiment", help="Experiment for the run (created if missing); required unless --no-run.")
@click.option("--pipeline-name", help="Pipeline name on the server [default: the YAML's pipelineInfo name].")
@click.option(
    "--version-name",
    help="Name of the new version when the pipeline exists [default: sha256-<first 12 hex digits of "
    "the file's SHA-256>; a version of the same content is reused].",
)
@click.option("--run-name", help="Run name [default: '<pipeline> <version> <UTC time>'].")
@param_option
@click.option("--no-run", is_flag=True, help="Only upload the pipeline or version; start no run.")
@click.option(
    "--strict-version",
    is_flag=True,
    help="Stop when the server's KFP version does not suit the pipeline's SDK.",
)
@service_account_option
@server_options
def submit(
    pipeline_file: str,
    experiment: str | None,
    pipeline_name: str | None,
    version_name: str | None,
    run_name: str | None,
    params: tuple[str, ...],
    no_run: bool,
    strict_version: bool,
    service_account: str,
    connection: Connection,
) -> None:
    """Upload a compiled pipeline (or a new version of it) to KFP and start a run.

    Checks first the server's KFP version against the kfp SDK that compiled the file.
    """
    from kubetfx.errors import ConfigError
    from kubetfx.kfpclient.submit import submit as do_submit
    from kubetfx.kfpclient.versions import check_versions
    from kubetfx.pipeline_file import read, typed_parameters

    if not experiment and not no_run:
        raise ConfigError(
            "pass --experiment NAME (created if missing) for the run, or --no-run to only upload"
        )
    pipeline = read(pipeline_file)
    typed = typed_parameters(
        parse_params(params), pipeline.parameters, pipeline.name, where=f"{pipeline.path}: "
    )
    server = connect(connection)
    check = check_versions(pipeline.sdk_version, server.server_version, pipeline.path.name, pipeline.floor)
    report_versions(server, [check], strict_version)
    done = do_submit(
        server,
        pipeline,
        experiment=experiment,
        params=typed,
        pipeline_name=pipeline_name,
        version_name=version_name,
        run_name=run_name,
        run=not no_run,
        service_account=service_account or None,
    )
    click.echo(f"pipeline: {done.pipeline_name} (id {done.pipeline_id}, {done.pipeline_action})")
    click.echo(f"version: {done.version_name} (id {done.version_id}, {done.version_action})")
    if done.run_id:
        click.echo(f"experiment: {done.experiment_name} (id {done.experiment_id})")
        click.echo(f"run: {done.run_name} (id {done.run_id})")
        click.echo(f"run URL: {done.run_url}")
