"""``kubetfx worker status|stop``: the warm worker that runs local tasks (kubetfx.local.warm)."""

from __future__ import annotations

import time

import click


def register(group: click.Group) -> None:
    """Add the ``worker`` commands to the kubetfx command group."""
    group.add_command(worker)


@click.group()
def worker() -> None:
    """The warm worker: keeps TensorFlow, TFDV, TFMA and Beam imported between local tasks."""


@worker.command("status")
def worker_status() -> None:
    """List warm workers: pid, age, tasks served and running, memory, idle time."""
    from tabulate import tabulate

    from kubetfx.local import warm

    found = warm.status()
    if not found:
        state = "on" if warm.enabled() else "off (KUBETFX_WARM=0)"
        click.echo(f"no warm worker in {warm.runtime_dir()}; the warm worker is {state}")
        return
    rows = []
    for info in found:
        if not info.get("alive"):
            rows.append([info.get("pid"), "gone", "", "", "", "", info.get("socket")])
            continue
        running = ", ".join(f"{t['task']} ({t['pid']})" for t in info.get("running", [])) or "-"
        rows.append(
            [
                info["pid"],
                _age(info.get("uptime", 0)),
                info.get("served", 0),
                running,
                f"{info.get('rss_mb', 0):.0f} MB",
                f"{_age(info.get('idle_for', 0))} of {_age(info.get('idle_seconds', 0))}",
                info.get("socket"),
            ]
        )
    click.echo(tabulate(rows, headers=["pid", "up", "served", "running", "RSS", "idle", "socket"]))


@worker.command("stop")
@click.option("--now", is_flag=True, help="Kill running tasks instead of letting them finish.")
def worker_stop(now: bool) -> None:
    """Stop every warm worker (the next task starts a fresh one)."""
    from kubetfx.local import warm

    stopped = warm.stop(now=now)
    if not stopped:
        click.echo(f"no warm worker running in {warm.runtime_dir()}")
        return
    click.echo(f"stopped warm worker(s) {', '.join(map(str, stopped))}")


def _age(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(float(seconds)))
