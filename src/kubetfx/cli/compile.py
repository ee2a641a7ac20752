"""``kubetfx compile``: regenerate the checked-in component and pipeline YAML, or compile one."""

from __future__ import annotations

import sys

import click

from kubetfx.errors import KubetfxError


@click.command("compile")
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
