"""The ``kubetfx`` command line: the command group and its entry point.

One module per command group; they share :mod:`~kubetfx.cli.options` (``--param``,
``--metadata``), :mod:`~kubetfx.cli.store` (opening an existing metadata store) and
:mod:`~kubetfx.cli.server` (the KFP connection options). Imports point one way: this
module imports the command modules, which never import it.

Only the command being run imports what it needs: ``kubetfx run`` loads the runner,
``kubetfx compile`` kfp's compiler, ``kubetfx submit`` kfp's client, and nothing at
start-up imports TensorFlow.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from kubetfx import __version__
from kubetfx.cli.compile import compile_cmd
from kubetfx.cli.lineage import audit, drift, lineage, rollback
from kubetfx.cli.metadata import metadata
from kubetfx.cli.modelcard import model_card
from kubetfx.cli.monitoring import serving_drift
from kubetfx.cli.promote import aliases_cmd, promote
from kubetfx.cli.rollout import rollout
from kubetfx.cli.run import run, runs
from kubetfx.cli.schedule import schedule
from kubetfx.cli.schema import schema
from kubetfx.cli.submit import submit
from kubetfx.cli.worker import worker
from kubetfx.errors import KubetfxError
from kubetfx.settings import redact

__all__ = ["cli", "main"]


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


for _command in (
    run,
    runs,
    compile_cmd,
    drift,
    serving_drift,
    lineage,
    audit,
    schema,
    rollback,
    rollout,
    promote,
    aliases_cmd,
    model_card,
    metadata,
    submit,
    schedule,
    worker,
):
    cli.add_command(_command)


def main() -> None:
    """Console entry point."""
    cli(prog_name="kubetfx")
