"""``kubetfx worker status|stop``: the warm worker that runs local tasks (kubetfx.local.warm),
and the note ``kubetfx run`` prints when one stays running."""

from __future__ import annotations

import sys
import time

import click


@click.group()
def worker() -> None:
    """The warm worker: keeps TensorFlow, TFDV, TFMA and Beam imported between local tasks."""


@worker.command("status")
@click.option("--all", "every", is_flag=True, help="Every environment's workers, not only this one's.")
def worker_status(every: bool) -> None:
    """List this environment's warm workers: pid, age, tasks served and running, memory, idle time."""
    from tabulate import tabulate

    from kubetfx.local import warm

    found = warm.status(interpreter=None if every else sys.executable)
    if not found:
        state = "on" if warm.enabled() else "off (KUBETFX_WARM=0)"
        scope = "" if every else f" for {_environment(sys.executable)}"
        click.echo(f"no warm worker{scope} in {warm.runtime_dir()}; the warm worker is {state}")
        return
    rows = []
    for info in found:
        environment = _environment(str(info.get("interpreter", "")))
        if not info.get("alive"):
            rows.append([info.get("pid"), "gone", "", "", "", "", environment])
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
                environment,
            ]
        )
    click.echo(tabulate(rows, headers=["pid", "up", "served", "running", "RSS", "idle", "environment"]))


@worker.command("stop")
@click.option("--now", is_flag=True, help="Kill running tasks instead of letting them finish.")
@click.option("--all", "every", is_flag=True, help="Stop every environment's workers (other checkouts' too).")
def worker_stop(now: bool, every: bool) -> None:
    """Stop this environment's warm workers (the next task starts a fresh one)."""
    from kubetfx.local import warm

    stopped = warm.stop(now=now, interpreter=None if every else sys.executable)
    if not stopped:
        scope = "" if every else f" for {_environment(sys.executable)}"
        click.echo(f"no warm worker running{scope} in {warm.runtime_dir()}")
        return
    click.echo(f"stopped warm worker(s) {', '.join(map(str, stopped))}")


def left_running_note(program: str = "kubetfx") -> str:
    """One paragraph for the run summary when a warm worker of this environment stays
    behind: its pid, memory, idle timeout and how to stop it ("" when none does)."""
    from kubetfx.local import warm

    alive = [w for w in warm.status(interpreter=sys.executable) if w.get("alive")]
    if not alive:
        return ""
    pids = ", ".join(str(w["pid"]) for w in alive)
    memory = sum(float(w.get("rss_mb", 0)) for w in alive)
    idle = max(float(w.get("idle_seconds", 0)) for w in alive)
    return (
        f"Warm worker {pids} stays running ({memory:.0f} MB) so the next run skips the imports; "
        f"it stops after {_duration(idle)} idle.\n"
        f"Stop it now: {program} worker stop (only this environment's); "
        "turn it off: --no-warm or KUBETFX_WARM=0."
    )


def _environment(interpreter: str) -> str:
    """A worker's environment, as people name it: the virtual environment's folder."""
    import os

    folder = os.path.dirname(os.path.dirname(os.path.abspath(interpreter))) if interpreter else ""
    return folder or "?"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _age(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(float(seconds)))
