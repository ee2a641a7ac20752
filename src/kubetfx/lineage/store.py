"""Opening an ML Metadata store, with retries for concurrent writers.

A store is opened without schema migration: kubetfx creates the schema of a new,
empty store but never upgrades an existing one unless asked (``kubetfx metadata
upgrade``), because a store may be shared with other tools (a KFP backend, TFX).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubetfx.errors import MetadataStoreError, missing_runtime
from kubetfx.settings import MetadataConfig, parse_metadata_url
from kubetfx.taskenv import GLOG_LEVEL, GLOG_LEVEL_DEFAULT

os.environ.setdefault(GLOG_LEVEL, GLOG_LEVEL_DEFAULT)  # before ML Metadata's C++ side loads

try:
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb
except ImportError as _err:  # pragma: no cover - authoring-only installs
    raise missing_runtime("ml-metadata", _err) from _err

import tenacity

T = TypeVar("T")


def _is_retryable(err: BaseException) -> bool:
    """Errors that succeed when tried again: another writer's lock or deadlock (SQLite's
    "database is locked", MySQL deadlocks), or a service briefly unavailable."""
    return isinstance(err, mlmd_errors.UnavailableError) or _is_contention(err)


def _is_contention(err: BaseException | None) -> bool:
    """Another writer holds the store (a lock, a deadlock, a schema being created): it
    clears once that writer is done, however many of them queue."""
    if isinstance(err, mlmd_errors.AbortedError):
        return True
    text = str(err).lower()
    if isinstance(err, RuntimeError) and ("concurrent connection" in text or "deadlock found" in text):
        # Two processes creating one store's schema, or registering its types at once on
        # MySQL/MariaDB: ML Metadata's store constructor raises either as a RuntimeError.
        return True
    return isinstance(err, mlmd_errors.StatusError) and (
        "locked" in text or "deadlock" in text or "busy" in text
    )


# Opening: a fresh store's first openers create its tables at once, and on MySQL/MariaDB
# they deadlock one another until one has finished (eight runs on a 2-core machine took
# longer than 10 s): contention is tried again for up to 90 s. Anything else retryable (an
# unreachable gRPC service: a wrong address, a missing port-forward) fails within 10 s;
# a refused user or an unknown host is not retried at all.
OPEN_CONTENTION_SECONDS = 90.0
OPEN_UNAVAILABLE_SECONDS = 10.0


def _open_stop(state: tenacity.RetryCallState) -> bool:
    err = state.outcome.exception() if state.outcome is not None else None
    limit = OPEN_CONTENTION_SECONDS if _is_contention(err) else OPEN_UNAVAILABLE_SECONDS
    return (state.seconds_since_start or 0.0) >= limit


_retry = tenacity.retry(
    retry=tenacity.retry_if_exception(_is_retryable),
    wait=tenacity.wait_random_exponential(multiplier=0.02, max=1.0),
    stop=tenacity.stop_after_delay(120),
    reraise=True,
)
_retry_open = tenacity.retry(
    retry=tenacity.retry_if_exception(_is_retryable),
    wait=tenacity.wait_random_exponential(multiplier=0.05, max=2.0),
    stop=_open_stop,
    reraise=True,
)
# Registering a type another process registered a moment ago fails once with
# AlreadyExists; the next try finds it.
_retry_type = tenacity.retry(
    retry=tenacity.retry_if_exception(
        lambda e: _is_retryable(e) or isinstance(e, mlmd_errors.AlreadyExistsError)
    ),
    wait=tenacity.wait_random_exponential(multiplier=0.02, max=1.0),
    stop=tenacity.stop_after_delay(120),
    reraise=True,
)


KFP_DRIVER_PROPERTY = "parent_dag_id"  # written on executions only by the KFP backend's driver


class Store:
    """An ML Metadata store plus the type ids kubetfx uses, with retried calls."""

    def __init__(self, config: MetadataConfig, *, upgrade: bool = False) -> None:
        self.config = config
        self.mlmd = _open(config, upgrade=upgrade)
        self._type_ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        # The ML Metadata client is not thread-safe: one call at a time per store.
        self._call_lock = threading.RLock()
        self._own: bool | None = None  # see ensure_own()

    def __str__(self) -> str:
        return str(self.config)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an MLMD method, retrying what concurrent writers make fail transiently."""

        def locked() -> T:
            with self._call_lock:
                return fn(*args, **kwargs)

        return _retry(locked)()

    def ensure_own(self) -> None:
        """Refuse to write into KFP's own metadata store (its metadata-grpc-service).

        kubetfx records runs in the KFP backend's layout (``system.PipelineRun`` contexts
        named by run id), so in KFP's store its executions would land in KFP's own run
        contexts, among the driver's. KFP's store is recognised by a property only KFP's
        driver writes: ``parent_dag_id`` on the executions of a run's tasks. Checked once
        per store and process.
        """
        if self._own is None:
            from ml_metadata.metadata_store import ListOptions

            query = f"custom_properties.{KFP_DRIVER_PROPERTY}.int_value > 0"
            found = self.call(self.mlmd.get_executions, list_options=ListOptions(limit=1, filter_query=query))
            self._own = not found
        if not self._own:
            raise MetadataStoreError(
                f"metadata store {self} is Kubeflow Pipelines' own (its executions carry KFP's "
                f"{KFP_DRIVER_PROPERTY}): kubetfx records its lineage in a store of its own, or its "
                "executions would mix into KFP's run contexts; point KUBETFX_METADATA at kubetfx's store "
                "(kustomize/components/mysql provides one)"
            )

    def type_id(self, kind: str, name: str) -> int:
        """Id of an artifact, execution or context type, registered on first use."""
        key = (kind, name)
        with self._lock:
            if key in self._type_ids:
                return self._type_ids[key]
        proto_cls, put = {
            "artifact": (pb.ArtifactType, self.mlmd.put_artifact_type),
            "execution": (pb.ExecutionType, self.mlmd.put_execution_type),
            "context": (pb.ContextType, self.mlmd.put_context_type),
        }[kind]

        def locked() -> int:
            with self._call_lock:
                return put(proto_cls(name=name))

        type_id = _retry_type(locked)()
        with self._lock:
            self._type_ids[key] = type_id
        return type_id


def _open(config: MetadataConfig, *, upgrade: bool) -> Any:
    if config.kind == "sqlite":
        path = Path(config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = pb.ConnectionConfig(
            sqlite=pb.SqliteMetadataSourceConfig(
                filename_uri=str(path),
                connection_mode=pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE,
            )
        )
    elif config.kind == "mysql":
        cfg = pb.ConnectionConfig(
            mysql=pb.MySQLDatabaseConfig(
                host=config.host,
                port=config.port,
                database=config.database,
                user=config.user,
                password=config.password,
            )
        )
    else:
        cfg = pb.MetadataStoreClientConfig(host=config.host, port=config.port)
    try:
        if config.kind == "mysql":
            store = _open_mysql(config, cfg, upgrade)
        else:
            store = _retry_open(metadata_store.MetadataStore)(cfg, enable_upgrade_migration=upgrade)
        if config.kind == "grpc":
            # A gRPC client connects lazily: ask once now, so a wrong address fails here,
            # in seconds, instead of in the middle of a run.
            _retry_open(store.get_artifact_types)()
        return store
    except mlmd_errors.FailedPreconditionError as err:
        raise MetadataStoreError(
            f"metadata store {config} has an older schema; kubetfx does not migrate a "
            f"store on its own. Upgrade it deliberately with `kubetfx metadata upgrade` "
            f"({_first_line(err)})"
        ) from None
    except (mlmd_errors.StatusError, RuntimeError) as err:
        # ML Metadata's MySQL client says only "mysql_real_connect failed": find out more.
        raise MetadataStoreError(_explain(config, err)) from None


# What a plain client's try can show after ML Metadata's failed: the server accepts now
# (0), too many connections (1040, 1203), a handshake lost or timed out (2006, 2013).
# Anything else (access denied, unknown database, host blocked, unreachable) is final.
_MYSQL_TRANSIENT = frozenset({0, 1040, 1203, 2006, 2013})
# How long to keep trying a MySQL server that accepts the connection but refused ML
# Metadata's (on a starved machine a handshake can run past the server's connect_timeout).
MYSQL_CONNECT_RETRY_SECONDS = 30.0


def _open_mysql(config: MetadataConfig, cfg: Any, upgrade: bool) -> Any:
    """ML Metadata's MySQL store, tried again while the server itself accepts the user.

    ML Metadata's client says only "mysql_real_connect failed" (no code, no message),
    whatever went wrong. After such a failure a plain client (PyMySQL) asks the server the
    same: a refusal (wrong password, unknown host...) or an unreachable server ends it at
    once, with the server's reason; an answer that can change (it accepts now, too many
    connections, a lost handshake) makes ML Metadata try again, up to
    ``MYSQL_CONNECT_RETRY_SECONDS``.
    """
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: _is_bare_mysql_failure(e) and _mysql_answer(config)[0] in _MYSQL_TRANSIENT
        ),
        wait=tenacity.wait_random_exponential(multiplier=0.2, max=2.0),
        stop=tenacity.stop_after_delay(MYSQL_CONNECT_RETRY_SECONDS),
        reraise=True,
    )
    return retrying(_retry_open(metadata_store.MetadataStore), cfg, enable_upgrade_migration=upgrade)


def _is_bare_mysql_failure(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and "mysql_real_connect failed" in str(err)


def _mysql_answer(config: MetadataConfig) -> tuple[int, str]:
    """What the server answers a plain client with the same user and password: (0, "")
    when it accepts, else the MySQL error (code, message); (-1, why) if it cannot ask."""
    try:
        import pymysql
    except ImportError:  # pragma: no cover - pymysql comes with the runtime install
        return -1, "PyMySQL is not installed"
    try:
        pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password,
            connect_timeout=10,
        ).close()
    except pymysql.err.MySQLError as err:
        code = err.args[0] if err.args and isinstance(err.args[0], int) else -1
        return code, str(err.args[1]) if len(err.args) > 1 else str(err)
    return 0, ""


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _unreachable(host: str, port: int) -> str:
    """Why a TCP connection to host:port fails ("" when it does not)."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return ""
    except OSError as err:
        return err.strerror or type(err).__name__


def _explain(config: MetadataConfig, err: BaseException) -> str:
    detail = _first_line(err)
    if config.kind == "mysql":
        why = _unreachable(config.host, config.port)
        if why:
            return (
                f"cannot reach metadata store {config}: {config.host}:{config.port}: {why}; check that the "
                "MySQL/MariaDB server is running and the host and port are right"
            )
        code, message = _mysql_answer(config)
        if code in (1045, 1698):
            return (
                f"metadata store {config} refused user {config.user!r} (wrong password?); "
                f"check the user and the password (KUBETFX_METADATA_PASSWORD or the URL)"
            )
        if code > 0:
            return f"metadata store {config} refused the connection: MySQL error {code}: {message}"
        if code == 0 and _is_bare_mysql_failure(err):
            return (
                f"cannot open metadata store {config}: ML Metadata's connection kept failing "
                f"({detail}) while the server accepted user {config.user!r} from another client; "
                "MySQL 8 users need mysql_native_password (ML Metadata cannot use caching_sha2_password)"
            )
        return f"cannot open metadata store {config}: {detail} ({message})"
    if config.kind == "grpc":
        return (
            f"cannot reach metadata service {config}; is it running (in a cluster: "
            f"kubectl port-forward to kubetfx's metadata service, never KFP's)? ({detail})"
        )
    return f"cannot open metadata store {config}: {detail}"


@functools.lru_cache(maxsize=8)
def _cached_store(url: str, pid: int) -> Store:
    return Store(parse_metadata_url(url))


def connect(url: str, *, upgrade: bool = False) -> Store:
    """Open the store at ``url`` (see :func:`kubetfx.settings.parse_metadata_url`).

    Connections are reused within a process (never across a fork).
    """
    if upgrade:
        return Store(parse_metadata_url(url), upgrade=True)
    return _cached_store(url, os.getpid())
