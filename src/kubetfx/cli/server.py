"""What the commands that talk to a KFP API server share: the five connection options, and
how a version check is reported.

The options are declared once here: :func:`server_options` adds them to a command and hands
it one :class:`~kubetfx.kfpclient.connection.Connection` (options first, then kubetfx's
environment variables, then kfp's own). Nothing here imports kfp's client, so ``kubetfx
--help`` stays light; a command connects (:class:`~kubetfx.kfpclient.connection.Server`)
only after it has checked its own input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kubetfx.kfpclient.connection import (
    HOST_ENV,
    KFP_HOST_ENV,
    NAMESPACE_ENV,
    TOKEN_ENV,
    UI_HOST_ENV,
    resolve_connection,
)

if TYPE_CHECKING:
    from kubetfx.kfpclient.connection import Connection, Server
    from kubetfx.kfpclient.versions import VersionCheck

_OPTIONS = (
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
)

service_account_option = click.option(
    "--service-account",
    envvar="KUBETFX_KFP_SERVICE_ACCOUNT",
    show_envvar=True,
    default="kubetfx-pipeline-runner",
    show_default=True,
    help="Kubernetes service account the run's pods use (kustomize/base creates this one); '' for "
    "the namespace's default.",
)


def server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options every command that talks to KFP takes; the command gets them as one
    ``connection`` argument. Put it under the command's own options (applied first)."""

    @functools.wraps(command)
    def with_connection(
        *args: Any,
        host: str | None,
        namespace: str | None,
        token: str | None,
        kube_context: str | None,
        ui_host: str | None,
        **kwargs: Any,
    ) -> Any:
        connection = resolve_connection(host, namespace, token, kube_context, ui_host)
        return command(*args, connection=connection, **kwargs)

    decorated: Callable[..., Any] = with_connection
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated


def connect(connection: Connection) -> Server:
    """The connected server (this is where kfp's client is imported and the server asked)."""
    from kubetfx.kfpclient.connection import Server

    return Server(connection)


def report_versions(server: Server, checks: list[VersionCheck], strict: bool) -> None:
    """Print each distinct version check; stop on a blocking one, or any mismatch with ``strict``."""
    from kubetfx.kfpclient.connection import KfpServerError

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
