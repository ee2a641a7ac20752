"""Version aliases: ``kubetfx promote NAME:VERSION --alias production`` and ``kubetfx aliases NAME``.

The aliases live in lineage (:mod:`kubetfx.lineage.aliases`); these commands only assign and
show them.
"""

from __future__ import annotations

import click

from kubetfx.cli.options import metadata_option
from kubetfx.cli.store import existing_store
from kubetfx.errors import KubetfxError


def _split_ref(ref: str) -> tuple[str, str]:
    name, _, version = ref.rpartition(":")
    if not name or not version:
        raise KubetfxError(
            f"{ref!r}: write the version as MODEL_NAME:VERSION (e.g. penguins:3) or MODEL_NAME:ALIAS "
            "(e.g. penguins:candidate); `kubetfx lineage pushes` lists the versions"
        )
    return name, version


@click.command()
@click.argument("ref", metavar="NAME:VERSION")
@click.option(
    "--alias",
    "alias_names",
    multiple=True,
    required=True,
    help="Alias to point at that version: production, candidate or a name of your own (repeatable).",
)
@click.option("--reason", default="", help="Why, kept in the alias's history.")
@click.option("--actor", default="", help="Who, kept in the history [default: $USER].")
@click.option("--force", is_flag=True, help="Also a version whose stepped rollout was rolled back.")
@metadata_option
def promote(
    ref: str, alias_names: tuple[str, ...], reason: str, actor: str, force: bool, metadata: str | None
) -> None:
    """Point an alias at a pushed version (NAME:VERSION, or NAME:ALIAS for the version an alias
    names now), recorded in lineage with who and why. Refuses a version never pushed, and one
    whose rollout was rolled back unless --force."""
    from kubetfx.lineage.aliases import aliases, assign_alias, check_alias, resolve_version

    name, version_ref = _split_ref(ref)
    for alias in alias_names:
        check_alias(alias)
    store = existing_store(metadata)
    version = resolve_version(store, name, version_ref)
    before = aliases(store, name)
    for alias in alias_names:
        assign_alias(store, name, version, alias, reason=reason, actor=actor, force=force)
        was = before.get(alias)
        moved = "" if was is None else " (unchanged)" if was == version else f" (was version {was})"
        click.echo(f"{name}:{alias} -> version {version}{moved}")


@click.command("aliases")
@click.argument("model_name")
@click.option("--history", "show_history", is_flag=True, help="Every assignment, newest first.")
@metadata_option
def aliases_cmd(model_name: str, show_history: bool, metadata: str | None) -> None:
    """A model's aliases and the versions they name (with --history: who moved them, when, why)."""
    from tabulate import tabulate

    from kubetfx.lineage.aliases import aliases, history
    from kubetfx.local.summary import when

    store = existing_store(metadata)
    if show_history:
        moves = history(store, model_name)
        if not moves:
            raise KubetfxError(f"no aliases of {model_name!r} are recorded yet")
        rows = [[m.alias, m.version, when(m.assigned_at), m.actor, m.reason] for m in moves]
        click.echo(tabulate(rows, headers=["alias", "version", "assigned at", "by", "reason"]))
        return
    current = aliases(store, model_name)
    if not current:
        raise KubetfxError(
            f"no aliases of {model_name!r} are recorded yet; "
            f"`kubetfx promote {model_name}:VERSION --alias production` assigns one"
        )
    latest = {m.alias: m for m in reversed(history(store, model_name))}
    rows = [
        [alias, version, when(latest[alias].assigned_at), latest[alias].actor, latest[alias].reason]
        for alias, version in current.items()
    ]
    click.echo(tabulate(rows, headers=["alias", "version", "since", "by", "reason"]))
