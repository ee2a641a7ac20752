"""Where things go: the metadata store and the pipeline root.

Settings are read once, at the edge (CLI entry or task wrapper), and passed down
as plain values. Defaults live in the project's working folder (``./.kubetfx``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kubetfx.errors import ConfigError

METADATA_ENV = "KUBETFX_METADATA"
METADATA_PASSWORD_ENV = "KUBETFX_METADATA_PASSWORD"  # noqa: S105 - a variable name
PIPELINE_ROOT_ENV = "KUBETFX_PIPELINE_ROOT"
PUSH_ROOT_ENV = "KUBETFX_PUSH_ROOT"
HOME_DIRNAME = ".kubetfx"


def default_home(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The project's working folder for local runs."""
    return Path(cwd or os.getcwd()) / HOME_DIRNAME


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """A metadata URL for a SQLite file (absolute paths become ``sqlite:////abs``)."""
    return "sqlite:///" + str(path)


def resolve_metadata_url(explicit: str | None = None) -> str:
    """The metadata store URL: explicit option, then environment, then the local default."""
    url = explicit or os.environ.get(METADATA_ENV)
    if url:
        # A relative SQLite path is relative to where the command runs; tasks run in
        # folders of their own, so they are handed the absolute path.
        if (
            url.startswith("sqlite:///")
            and not url.startswith("sqlite:////")
            and len(url) > len("sqlite:///")
        ):
            return sqlite_url(Path(url[len("sqlite:///") :]).absolute())
        return url
    return sqlite_url(default_home().absolute() / "metadata.sqlite")


def resolve_pipeline_root(explicit: str | None = None) -> str:
    """The pipeline root: explicit option, then environment, then the local default."""
    root = explicit or os.environ.get(PIPELINE_ROOT_ENV)
    if root:
        return str(Path(root).absolute()) if "://" not in root else root
    return str(default_home().absolute() / "pipeline_root")


def resolve_push_roots() -> list[str]:
    """Where the Pusher may publish: ``KUBETFX_PUSH_ROOT`` (comma-separated), else ``./.kubetfx/serving``.

    A deployment setting, never a pipeline parameter: a pipeline chooses a destination
    under one of these roots. Local roots are made absolute (``file://`` is dropped);
    object-store roots (``s3://bucket/prefix``) are kept as given, without a trailing slash.
    """
    roots = []
    for raw in os.environ.get(PUSH_ROOT_ENV, "").split(","):
        root = raw.strip()
        if root.startswith("file://"):
            root = root[len("file://") :]
        if not root:
            continue
        if "://" in root:
            scheme, _, rest = root.partition("://")
            roots.append(f"{scheme}://{rest.rstrip('/')}")
        else:
            roots.append(str(Path(root).absolute()))
    return roots or [str(default_home().absolute() / "serving")]


@dataclass(frozen=True)
class MetadataConfig:
    """A parsed metadata store address. ``str()`` never shows the password."""

    kind: str  # "sqlite" | "mysql" | "grpc"
    path: str = ""
    host: str = ""
    port: int = 0
    database: str = ""
    user: str = ""
    password: str = ""

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        if self.kind == "mysql":
            secret = ":***" if self.password else ""
            return f"mysql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"
        return f"grpc://{self.host}:{self.port}"

    __repr__ = __str__


def parse_metadata_url(url: str) -> MetadataConfig:
    """Parse ``sqlite:///PATH``, ``mysql://USER:PASSWORD@HOST:PORT/DB`` or ``grpc://HOST:PORT``.

    The MySQL password may instead come from ``KUBETFX_METADATA_PASSWORD`` (in a cluster,
    from a Kubernetes Secret), so it never has to appear in a URL or a pipeline file.
    """
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise ConfigError("metadata URL 'sqlite:///' names no file; use sqlite:///PATH")
        return MetadataConfig(kind="sqlite", path=path)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"metadata URL {redact(url)!r} has a bad port: {err}") from None
    if parts.scheme == "mysql":
        database = parts.path.lstrip("/")
        if not (parts.hostname and database and parts.username):
            raise ConfigError(
                f"metadata URL {redact(url)!r} is incomplete; use mysql://USER@HOST:PORT/DATABASE "
                f"(the password in {METADATA_PASSWORD_ENV}, or after USER and a colon)"
            )
        password = unquote(parts.password) if parts.password else os.environ.get(METADATA_PASSWORD_ENV, "")
        return MetadataConfig(
            kind="mysql",
            host=parts.hostname,
            port=port or 3306,
            database=database,
            user=unquote(parts.username),
            password=password,
        )
    if parts.scheme == "grpc":
        if not (parts.hostname and port):
            raise ConfigError(f"metadata URL {url!r} is incomplete; use grpc://HOST:PORT")
        return MetadataConfig(kind="grpc", host=parts.hostname, port=port)
    raise ConfigError(
        f"unknown metadata store {redact(url)!r}; use sqlite:///PATH, "
        f"mysql://USER@HOST:PORT/DATABASE (the password in {METADATA_PASSWORD_ENV}) or grpc://HOST:PORT"
    )


_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


def redact(text: str) -> str:
    """Hide passwords in any URL inside ``text`` (``user:secret@`` becomes ``user:***@``)."""
    return _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


REDACT_ENV = "KUBETFX_REDACT_FEATURES"


def redacted_features() -> frozenset[str]:
    """Features whose raw values reports must not show (``KUBETFX_REDACT_FEATURES``:
    comma-separated names, or ``*`` for every feature)."""
    raw = os.environ.get(REDACT_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def is_redacted(feature: str, redacted: frozenset[str] | None = None) -> bool:
    """Whether ``feature``'s values are to be hidden."""
    names = redacted_features() if redacted is None else redacted
    return "*" in names or feature in names


def redact_value(feature: str, value: str) -> str:
    """A stand-in for a hidden value: stable across reports and runs (so slices can be
    compared), not reversible in practice (a salted hash would not be stable)."""
    import hashlib

    return "#" + hashlib.sha256(f"{feature}\x00{value}".encode()).hexdigest()[:8]
