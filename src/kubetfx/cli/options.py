"""Options and argument parsing that several ``kubetfx`` commands share."""

from __future__ import annotations

import click

from kubetfx.errors import ParameterError

METADATA_HELP = (
    "Metadata store: sqlite:///PATH, mysql://USER:PASSWORD@HOST:PORT/DB or grpc://HOST:PORT "
    "[env KUBETFX_METADATA; default ./.kubetfx/metadata.sqlite]."
)

metadata_option = click.option("--metadata", help=METADATA_HELP)

param_option = click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline parameter (repeatable)."
)


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--param NAME=VALUE`` pairs as text; :mod:`kubetfx.pipeline_file` types them."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param {pair!r} is not NAME=VALUE")
        params[name.strip()] = value
    return params
