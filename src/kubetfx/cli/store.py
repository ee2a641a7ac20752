"""Opening the metadata store for commands that only read lineage: it must exist already."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubetfx.errors import MetadataStoreError
from kubetfx.settings import resolve_metadata_url


def existing_store(metadata: str | None) -> Any:
    """Open a store that must already exist: commands that only read lineage never create
    one (a mistyped path would otherwise make a folder and an empty store, and say "no
    runs")."""
    from kubetfx.lineage.store import connect

    return connect(require_existing(metadata))


def require_existing(metadata: str | None) -> str:
    """The store's URL, after checking that a store is there (nothing is created)."""
    from kubetfx.settings import parse_metadata_url

    url = resolve_metadata_url(metadata)
    config = parse_metadata_url(url)
    if config.kind == "sqlite" and not Path(config.path).is_file():
        where = Path(config.path)
        detail = (
            f"no file {where.name} in {where.parent}"
            if where.parent.is_dir()
            else f"folder {where.parent} does not exist"
        )
        raise MetadataStoreError(
            f"no metadata store at {config} ({detail}); check the path (--metadata or "
            "KUBETFX_METADATA), or run a pipeline first: `kubetfx run PIPELINE.yaml` creates it"
        )
    if config.kind == "mysql":
        _require_mysql_schema(config)
    return url


def _require_mysql_schema(config: Any) -> None:
    """Refuse a MySQL database that holds no ML Metadata tables (ML Metadata would create
    them). Connection failures are left to :func:`kubetfx.lineage.store.connect`, which
    explains them."""
    try:
        import pymysql
    except ImportError:  # pragma: no cover - PyMySQL comes with the runtime install
        return
    try:
        connection = pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password,
            connect_timeout=10,
        )
    except pymysql.err.MySQLError:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = 'MLMDEnv'",
                (config.database,),
            )
            (found,) = cursor.fetchone()
    finally:
        connection.close()
    if not found:
        raise MetadataStoreError(
            f"no metadata store at {config} (database {config.database!r} holds no ML Metadata "
            "tables); check the database name, or run a pipeline first: `kubetfx run` creates it"
        )
