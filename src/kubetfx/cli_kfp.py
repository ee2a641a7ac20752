"""``kubetfx submit`` and ``kubetfx schedule``: talking to a Kubeflow Pipelines API server.

Kept apart from ``kubetfx.cli`` so that the local commands never import kfp's client: the
logic lives in :mod:`kubetfx.kfp_server`, which imports kfp only when a command talks to a
server. Documented in docs/submit-and-schedule.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kubetfx.kfp_server import (
    HOST_ENV,
    KFP_HOST_ENV,
    NAMESPACE_ENV,
    TOKEN_ENV,
    UI_HOST_ENV,
)

if TYPE_CHECKING:
    from kubetfx.kfp_server import Server, VersionCheck


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that talks to KFP takes."""
    options = [
        click.option(
            "--host",
            envvar=[HOST_ENV, KFP_HOST_ENV],
            show_envvar=True,
            help="KFP API or UI address, e.g. http://localhost:8080 [default: kfp's discovery: in-cluster "
            "service, then your kube config].",
        ),
        click.option(
            "--namespace",
            envvar=NAMESPACE_ENV,
            show_envvar=True,
            help="Profile namespace on a multi-user Kubeflow.",
        ),
        click.option(
            "--existing-token",
            "token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="Bearer token for the KFP API; prefer the environment variable (a token on the command "
            "line is visible to other users of this machine). Never printed.",
        ),
        click.option("--kube-context", help="kube config context to use when --host is not given."),
        click.option(
            "--ui-host",
            envvar=UI_HOST_ENV,
            show_envvar=True,
            help="KFP UI address for the links printed [default: the host].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _connect(
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None = None,
    ui_host: str | None = None,
) -> Server:
    from kubetfx.kfp_server import Server, resolve_connection

    return Server(resolve_connection(host, namespace, token, kube_context, ui_host))


def _report_versions(server: Server, checks: list[VersionCheck], strict: bool) -> None:
    from kubetfx.kfp_server import KfpServerError

    seen = set()
    for check in checks:
        if check.message in seen:
            continue
        seen.add(check.message)
        if check.compatible is True:
            click.echo(f"KFP at {server.connection.label}: {check.message}")
        elif check.compatible is False:
            if check.blocking:
                raise KfpServerError(check.message)
            if strict:
                raise KfpServerError(f"{check.message} (stopped by --strict-version)")
            click.echo(f"kubetfx: warning: {check.message}", err=True)
        else:
            click.echo(f"kubetfx: note: {check.message}", err=True)


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
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline parameter (repeatable)."
)
@click.option("--no-run", is_flag=True, help="Only upload the pipeline or version; start no run.")
@click.option(
    "--strict-version",
    is_flag=True,
    help="Stop when the server's KFP version does not suit the pipeline's SDK.",
)
@click.option(
    "--service-account",
    envvar="KUBETFX_KFP_SERVICE_ACCOUNT",
    show_envvar=True,
    default="kubetfx-pipeline-runner",
    show_default=True,
    help="Kubernetes service account the run's pods use (kustomize/base creates this one); '' for "
    "the namespace's default.",
)
@_server_options
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
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """Upload a compiled pipeline (or a new version of it) to KFP and start a run.

    Checks first the server's KFP version against the kfp SDK that compiled the file.
    """
    from kubetfx.cli import _parse_params
    from kubetfx.errors import ConfigError
    from kubetfx.kfp_server import check_versions, coerce_params, read_pipeline
    from kubetfx.kfp_server import submit as do_submit

    if not experiment and not no_run:
        raise ConfigError(
            "pass --experiment NAME (created if missing) for the run, or --no-run to only upload"
        )
    pipeline = read_pipeline(pipeline_file)
    typed = coerce_params(_parse_params(params), pipeline.parameters, str(pipeline.path))
    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    check = check_versions(pipeline.sdk_version, server.server_version, pipeline.path.name, pipeline.floor)
    _report_versions(server, [check], strict_version)
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


@click.group()
def schedule() -> None:
    """Recurring runs as code: apply a schedule file, list, pause, resume, delete."""


@schedule.command("apply")
@click.argument("schedule_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing on the server.")
@click.option(
    "--strict-version", is_flag=True, help="Stop when a pipeline version's SDK does not suit the server."
)
@click.option(
    "--service-account",
    envvar="KUBETFX_KFP_SERVICE_ACCOUNT",
    show_envvar=True,
    default="kubetfx-pipeline-runner",
    show_default=True,
    help="Kubernetes service account the run's pods use (kustomize/base creates this one); '' for "
    "the namespace's default.",
)
@_server_options
def schedule_apply(
    schedule_file: str,
    dry_run: bool,
    strict_version: bool,
    service_account: str,
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """Make KFP's recurring runs match SCHEDULE_FILE.

    Creates what is missing, leaves what is unchanged. A changed schedule gets a new recurring
    run, then the old one is disabled, never deleted, so its runs in flight finish. Schedules
    on the server that the file no longer names are reported and left alone.

    Cron: KFP's 6 fields 'SECOND MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK', or standard
    5-field cron 'MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (kubetfx adds second 0), or
    @hourly, @daily, @weekly, @monthly, @yearly, @every DURATION. Checked before any request.
    """
    from kubetfx.kfp_server import apply_plan, describe, load_schedules, plan_schedules

    specs = load_schedules(schedule_file)  # cron and fields checked before any request
    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    plan, checks = plan_schedules(server, specs)
    _report_versions(server, checks, strict_version)
    where = f" (namespace {server.namespace})" if server.namespace else ""
    click.echo(f"plan for {schedule_file} on KFP at {server.connection.label}{where}:")
    for step in plan.steps:
        click.echo(describe(step))
    for name in plan.new_experiments:
        click.echo(f"experiment {name!r} will be created")
    for old in plan.not_in_file:
        click.echo(
            f"not in the file, left alone: {old.name} (recurring run {old.id}, "
            f"{'enabled' if old.enabled else 'paused'}); `kubetfx schedule pause {old.name}` stops it"
        )
    if dry_run:
        click.echo("dry run: nothing changed")
        return
    for line in apply_plan(server, plan, service_account=service_account or None):
        click.echo(line)


@schedule.command("list")
@_server_options
def schedule_list(
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """List the kubetfx-managed schedules on the server."""
    from tabulate import tabulate

    from kubetfx.kfp_server import current_schedules

    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    rows = [
        (
            m.name,
            "enabled" if m.enabled else "paused",
            m.cron,
            "on" if m.catchup else "off",
            m.max_concurrency,
            m.version_id,
            m.id,
            superseded,
        )
        for m, superseded in current_schedules(server)
    ]
    if not rows:
        click.echo(f"no kubetfx-managed schedules on KFP at {server.connection.label}")
        return
    headers = ["name", "state", "cron", "catchup", "max", "pipeline version", "recurring run", "superseded"]
    click.echo(tabulate(rows, headers=headers))


@schedule.command("pause")
@click.argument("name")
@_server_options
def schedule_pause(
    name: str,
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """Disable a schedule: no new runs; runs in flight finish."""
    from kubetfx.kfp_server import set_enabled

    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    click.echo(set_enabled(server, name, False))


@schedule.command("resume")
@click.argument("name")
@_server_options
def schedule_resume(
    name: str,
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """Enable a paused schedule again (catch-up as the schedule file set it)."""
    from kubetfx.kfp_server import set_enabled

    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    click.echo(set_enabled(server, name, True))


@schedule.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete (KFP may stop the runs in flight).")
@click.option(
    "--superseded-only",
    is_flag=True,
    help="Delete only the old recurring runs that `schedule apply` replaced and disabled, and only "
    "those with no runs in flight.",
)
@_server_options
def schedule_delete(
    name: str,
    yes: bool,
    superseded_only: bool,
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None,
    ui_host: str | None,
) -> None:
    """Delete a schedule's recurring runs. KFP then deletes the workflows they started,
    which stops their runs in flight; `schedule pause` stops new runs without that."""
    from kubetfx.errors import ConfigError
    from kubetfx.kfp_server import delete, delete_targets

    server = _connect(host, namespace, token, kube_context=kube_context, ui_host=ui_host)
    targets, in_flight, kept = delete_targets(server, name, superseded_only)
    for old in kept:
        click.echo(f"{name}: kept superseded recurring run {old.id}: runs of it are in flight; retry later")
    if not targets:
        if not kept:
            click.echo(f"{name}: no superseded recurring runs to delete")
        return
    ids = ", ".join(t.id for t in targets)
    running = ", ".join(r.run_id for r in in_flight)
    click.echo(
        f"kubetfx: warning: deleting recurring run(s) {ids} of {name!r}: KFP deletes the workflows they "
        f"started, which can stop runs in flight ({len(in_flight)} now{': ' + running if running else ''}); "
        f"`kubetfx schedule pause {name}` stops new runs and lets running ones finish",
        err=True,
    )
    if not yes:
        raise ConfigError(f"not deleting {name!r} without --yes")
    for line in delete(server, targets):
        click.echo(line)


def register(group: click.Group) -> None:
    """Add the cluster commands to the ``kubetfx`` group."""
    group.add_command(submit)
    group.add_command(schedule)
