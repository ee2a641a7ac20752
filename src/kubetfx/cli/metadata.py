"""``kubetfx metadata``: manage the metadata store."""

from __future__ import annotations

import click

from kubetfx.cli.options import METADATA_HELP
from kubetfx.cli.store import require_existing


@click.group()
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

    store = connect(require_existing(url), upgrade=True)  # upgrading never creates a store
    click.echo(f"{store} is at the schema of this ML Metadata version")
