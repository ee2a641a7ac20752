"""``kubetfx model-card REF``: a pushed model's card, from lineage alone."""

from __future__ import annotations

from pathlib import Path

import click

from kubetfx.cli.options import metadata_option
from kubetfx.cli.store import existing_store


@click.command("model-card")
@click.argument("ref", metavar="NAME:VERSION")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder to write model_card.json and model_card.html into.",
)
@metadata_option
def model_card(ref: str, out_dir: str, metadata: str | None) -> None:
    """A pushed model's card (NAME:VERSION or NAME:ALIAS): model_card.json, valid against the
    Model Card Toolkit's schema, and an HTML card; built from lineage alone, as of now (its
    rollouts and aliases included)."""
    from kubetfx.lineage.graph import MLMDLineage
    from kubetfx.modelcard.card import HTML_FILE, JSON_FILE, build, write

    card = build(MLMDLineage(existing_store(metadata)), ref)
    folder = Path(out_dir)
    write(card, folder / JSON_FILE, folder / HTML_FILE)
    click.echo(
        f"{card.title}: wrote {folder / JSON_FILE} (valid against the Model Card Toolkit schema v0.0.2)"
    )
    click.echo(f"{card.title}: wrote {folder / HTML_FILE}")
