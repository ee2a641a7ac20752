"""``kubetfx schedule``: recurring runs on a KFP API server, kept as code in a schedule file.

Documented in docs/submit-and-schedule.md; the client is :mod:`kubetfx.kfpclient`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubetfx.cli.server import connect, report_versions, server_options, service_account_option

if TYPE_CHECKING:
    from kubetfx.kfpclient.connection import Connection


@click.group()
def schedule() -> None:
    """Recurring runs as code: apply a schedule file, list, pause, resume, delete."""


@schedule.command("apply")
@click.argument("schedule_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing on the server.")
@click.option(
    "--strict-version", is_flag=True, help="Stop when a pipeline version's SDK does not suit the server."
)
@service_account_option
@server_options
def schedule_apply(
    schedule_file: str,
    dry_run: bool,
    strict_version: bool,
    service_account: str,
    connection: Connection,
) -> None:
    """Make KFP's recurring runs match SCHEDULE_FILE.

    Creates what is missing, leaves what is unchanged. A changed schedule gets a new recurring
    run, then the old one is disabled, never deleted, so its runs in flight finish. Schedules
    on the server that the file no longer names are reported and left alone.

    Cron: KFP's 6 fields 'SECOND MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK', or standard
    5-field cron 'MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (kubetfx adds second 0), or
    @hourly, @daily, @weekly, @monthly, @yearly, @every DURATION. Checked before any request.
    """
    from kubetfx.kfpclient.schedule_file import load_schedules
    from kubetfx.kfpclient.schedules import apply_plan, describe, plan_schedules

    specs = load_schedules(schedule_file)  # cron and fields checked before any request
    server = connect(connection)
    plan, checks = plan_schedules(server, specs)
    report_versions(server, checks, strict_version)
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
@server_options
def schedule_list(connection: Connection) -> None:
    """List the kubetfx-managed schedules on the server."""
    from tabulate import tabulate

    from kubetfx.kfpclient.schedules import current_schedules

    server = connect(connection)
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
@server_options
def schedule_pause(name: str, connection: Connection) -> None:
    """Disable a schedule: no new runs; runs in flight finish."""
    _set_enabled(name, connection, enabled=False)


@schedule.command("resume")
@click.argument("name")
@server_options
def schedule_resume(name: str, connection: Connection) -> None:
    """Enable a paused schedule again (catch-up as the schedule file set it)."""
    _set_enabled(name, connection, enabled=True)


def _set_enabled(name: str, connection: Connection, enabled: bool) -> None:
    from kubetfx.kfpclient.schedules import set_enabled

    click.echo(set_enabled(connect(connection), name, enabled))


@schedule.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete (KFP may stop the runs in flight).")
@click.option(
    "--superseded-only",
    is_flag=True,
    help="Delete only the old recurring runs that `schedule apply` replaced and disabled, and only "
    "those with no runs in flight.",
)
@server_options
def schedule_delete(
    name: str,
    yes: bool,
    superseded_only: bool,
    connection: Connection,
) -> None:
    """Delete a schedule's recurring runs. KFP then deletes the workflows they started,
    which stops their runs in flight; `schedule pause` stops new runs without that."""
    from kubetfx.errors import ConfigError
    from kubetfx.kfpclient.schedules import delete, delete_targets

    server = connect(connection)
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
