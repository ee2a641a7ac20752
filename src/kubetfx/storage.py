"""Artifacts wherever they live: the one place that opens a URI.

Local paths, ``file://``, ``s3://``, ``gs://`` and ``minio://`` all go through here:
:func:`exists`, :func:`open_uri`, :func:`read_bytes`, :func:`list_dir`, :func:`files`,
:func:`download`, :func:`upload`, and :func:`localize` for a folder an executor must
read from local disk.

``minio://BUCKET/KEY`` is KFP's name for an object in the cluster's MinIO (its default
pipeline root is ``minio://mlpipeline/v2/artifacts``); it is the S3 protocol at another
endpoint, so it is read with s3fs. The endpoint comes from ``KUBETFX_S3_ENDPOINT``, else
AWS's own ``AWS_ENDPOINT_URL``, else (for ``minio://`` only) KFP's in-cluster default
``http://minio-service.kubeflow:9000``; credentials come from the standard
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (in a cluster: from the
``kubetfx-object-store`` Secret that ``kubetfx.cluster.use_cluster_settings`` wires; for
KFP's own MinIO it holds the keys of KFP's ``mlpipeline-minio-artifact`` Secret).

Inside a KFP pod the launcher presents each input and output artifact at a local path
(``minio://b/k`` at ``/minio/b/k``, ``s3://`` at ``/s3/``, ``gs://`` at ``/gcs/``): it
downloads inputs before the command and uploads outputs after it. :func:`launcher_path`
and :func:`uri_for_launcher_path` are that mapping, so an executor handed a remote URI
that the launcher already downloaded reads the local copy. The local runner's
object-store mode gives every task its own folder in place of the pod's root filesystem
(``KUBETFX_LOCAL_MOUNT_ROOT``); in a pod it is unset and the paths are KFP's own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kubetfx.errors import KubetfxError

ENDPOINT_ENV = "KUBETFX_S3_ENDPOINT"
AWS_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
MOUNT_ROOT_ENV = "KUBETFX_LOCAL_MOUNT_ROOT"
MINIO_DEFAULT_ENDPOINT = "http://minio-service.kubeflow:9000"

# KFP's launcher (LocalPathForURI in backend/src/v2/component/launcher_v2.go).
LAUNCHER_PREFIXES = {"gs": "/gcs/", "minio": "/minio/", "s3": "/s3/"}
REMOTE_SCHEMES = tuple(LAUNCHER_PREFIXES)


class StorageError(KubetfxError):
    """An artifact URI that cannot be opened, found or copied."""


def scheme_of(uri: str) -> str:
    """``s3``, ``gs``, ``minio``, ...; ``""`` for a local path or ``file://`` URI."""
    if "://" not in uri:
        return ""
    scheme = uri.split("://", 1)[0].lower()
    return "" if scheme == "file" else scheme


def is_remote(uri: str) -> bool:
    """Whether ``uri`` lives off this machine (an object store)."""
    return bool(scheme_of(uri))


def _local(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _split(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    return scheme.lower(), rest


# ---------------------------------------------------------------------- launcher paths


def mount_root() -> str:
    """The root the launcher's ``/minio``, ``/s3`` and ``/gcs`` folders hang from: ``/`` in a
    pod, a task's own folder under the local runner's object-store mode."""
    return os.environ.get(MOUNT_ROOT_ENV) or "/"


def launcher_prefix(scheme: str, root: str | None = None) -> str | None:
    """Where the launcher mounts ``scheme://`` URIs (``/minio/``...), under ``root``
    (default :func:`mount_root`)."""
    prefix = LAUNCHER_PREFIXES.get(scheme)
    if prefix is None:
        return None
    return os.path.join(root or mount_root(), prefix.lstrip("/"))


def launcher_path(uri: str, root: str | None = None) -> str | None:
    """The local path at which KFP's launcher presents ``uri`` (None: not an object-store URI)."""
    scheme, rest = _split(uri) if "://" in uri else ("", uri)
    prefix = launcher_prefix(scheme, root)
    return None if prefix is None else prefix + rest


def uri_for_launcher_path(path: str, root: str | None = None) -> str | None:
    """The remote URI of a launcher path (``/minio/b/k`` -> ``minio://b/k``), else None."""
    for scheme in REMOTE_SCHEMES:
        prefix = launcher_prefix(scheme, root)
        if prefix and path.startswith(prefix):
            return f"{scheme}://{path[len(prefix) :]}"
    return None


def apply_mount_root() -> None:
    """Make KFP's artifact classes use :func:`mount_root` for ``Artifact.path`` (a no-op in a pod).

    KFP's SDK hard-codes ``/minio/``, ``/s3/`` and ``/gcs/``; the local runner's
    object-store mode moves them under the task's own folder so that tasks share no
    filesystem. The executor reads and writes exactly where it would in a pod, relative
    to that folder.
    """
    root = os.environ.get(MOUNT_ROOT_ENV)
    if not root:
        return
    from kfp.dsl.types import artifact_types

    artifact_types._GCS_LOCAL_MOUNT_PREFIX = launcher_prefix("gs")  # noqa: SLF001 - KFP's own constants
    artifact_types._MINIO_LOCAL_MOUNT_PREFIX = launcher_prefix("minio")  # noqa: SLF001
    artifact_types._S3_LOCAL_MOUNT_PREFIX = launcher_prefix("s3")  # noqa: SLF001
    tempfile.tempdir = None  # TMPDIR is per task: recompute it


# ---------------------------------------------------------------------- filesystems


def s3_endpoint(scheme: str = "s3") -> str | None:
    """The S3 endpoint for ``scheme://`` URIs: ``KUBETFX_S3_ENDPOINT``, ``AWS_ENDPOINT_URL``,
    else KFP's in-cluster MinIO for ``minio://`` (None: AWS's own endpoint)."""
    endpoint = os.environ.get(ENDPOINT_ENV) or os.environ.get(AWS_ENDPOINT_ENV)
    if endpoint:
        return endpoint if "://" in endpoint else f"http://{endpoint}"
    return MINIO_DEFAULT_ENDPOINT if scheme == "minio" else None


_S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
_s3_instances: dict[tuple[Any, ...], Any] = {}


def _s3(scheme: str) -> Any:
    import s3fs

    endpoint = s3_endpoint(scheme)
    # One client per process and settings (making one costs a second); the settings are
    # read from the environment on every call, so a changed endpoint or key is used at once.
    key = (os.getpid(), endpoint, *(os.environ.get(name, "") for name in _S3_ENV))
    fs = _s3_instances.get(key)
    if fs is None:
        client_kwargs: dict[str, Any] = {}
        if endpoint:
            client_kwargs["endpoint_url"] = endpoint
        if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
            client_kwargs["region_name"] = "us-east-1"  # MinIO's and moto's default
        # No listing cache: what another task or process wrote a moment ago is visible.
        fs = s3fs.S3FileSystem(
            client_kwargs=client_kwargs, skip_instance_cache=True, use_listings_cache=False
        )
        _s3_instances[key] = fs
    return fs


def filesystem(uri: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)`` for a local path or a URI.

    The endpoint and credentials are read from the environment on every call.
    """
    try:
        import fsspec
    except ImportError as err:  # pragma: no cover - the runtime profile installs it
        raise StorageError(f"{uri}: reading artifacts needs fsspec (pip install 'kubetfx[runtime]')") from err
    scheme = scheme_of(uri)
    if not scheme:
        return fsspec.filesystem("file"), os.path.abspath(_local(uri))
    _, rest = _split(uri)
    if scheme in ("s3", "minio", "s3a"):
        try:
            fs = _s3(scheme)
        except ImportError as err:
            raise StorageError(f"{uri}: reading {scheme}:// needs s3fs (pip install s3fs)") from err
        return fs, rest.rstrip("/")
    try:
        fs, path = fsspec.core.url_to_fs(uri, skip_instance_cache=True)
    except ImportError as err:
        raise StorageError(
            f"{uri}: cannot open {scheme}:// here (install its fsspec filesystem): {err}"
        ) from err
    except ValueError as err:
        raise StorageError(f"{uri}: cannot open this kind of URI here: {err}") from None
    return fs, path.rstrip("/")


def _wrap(uri: str, err: BaseException) -> StorageError:
    if isinstance(err, StorageError):
        return err
    return StorageError(f"{uri}: {type(err).__name__}: {err}")


def exists(uri: str) -> bool:
    """Whether a file or folder is at ``uri`` (a folder in an object store: any key under it)."""
    if not uri:
        return False
    if not is_remote(uri):
        return os.path.exists(_local(uri))
    fs, path = filesystem(uri)
    try:
        return bool(fs.exists(path)) or bool(fs.find(path, maxdepth=1))
    except FileNotFoundError:
        return False
    except Exception as err:  # noqa: BLE001 - credentials, endpoint, network: say which URI
        raise _wrap(uri, err) from None


def is_file(uri: str) -> bool:
    """Whether ``uri`` names one file (an object), not a folder."""
    if not is_remote(uri):
        return os.path.isfile(_local(uri))
    fs, path = filesystem(uri)
    try:
        return bool(fs.isfile(path))
    except FileNotFoundError:
        return False
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None


def join(uri: str, *parts: str) -> str:
    """``uri`` with ``parts`` appended ("/" for URIs, the OS separator for paths)."""
    if "://" in uri:
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(uri, *parts)


def open_uri(uri: str, mode: str = "rb") -> IO[Any]:
    """Open the file at ``uri`` (``rb``, ``r``, ``wb`` or ``w``)."""
    if not is_remote(uri):
        return open(_local(uri), mode)  # noqa: SIM115 - the caller closes it
    fs, path = filesystem(uri)
    try:
        return fs.open(path, mode)
    except FileNotFoundError:
        raise StorageError(f"{uri}: no such file") from None
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None


def read_bytes(uri: str) -> bytes:
    """The bytes of the file at ``uri``."""
    with open_uri(uri, "rb") as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to the file at ``uri`` (parent folders as needed)."""
    if not is_remote(uri):
        Path(_local(uri)).parent.mkdir(parents=True, exist_ok=True)
    with open_uri(uri, "wb") as f:
        f.write(data)


def list_dir(uri: str) -> list[str]:
    """Names of the entries directly in the folder at ``uri``, sorted."""
    if not is_remote(uri):
        return sorted(os.listdir(_local(uri)))
    fs, path = filesystem(uri)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        raise StorageError(f"{uri}: no such folder") from None
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None
    return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != path})


def files(uri: str) -> dict[str, int]:
    """Every file under ``uri`` as ``{relative path: size}`` ("/"-separated); a single file
    is ``{its name: size}``. Empty when nothing is there."""
    if not is_remote(uri):
        path = _local(uri)
        if os.path.isfile(path):
            return {os.path.basename(path): os.path.getsize(path)}
        found = {}
        for root, _dirs, names in os.walk(path):
            for name in names:
                full = os.path.join(root, name)
                found[os.path.relpath(full, path).replace(os.sep, "/")] = os.path.getsize(full)
        return found
    fs, path = filesystem(uri)
    try:
        if fs.isfile(path):
            return {path.rsplit("/", 1)[-1]: int(fs.size(path))}
        listed = fs.find(path, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None
    return {
        name[len(path) + 1 :]: int(info.get("size") or 0)
        for name, info in listed.items()
        if info.get("type") != "directory" and name.startswith(path + "/")
    }


def download(uri: str, local: str, *, missing_ok: bool = False) -> str:
    """Copy the file or folder at ``uri`` to the local path ``local``; returns ``local``.

    Like KFP's launcher: a single object becomes a file, a prefix becomes a folder.
    ``missing_ok``: nothing at ``uri`` downloads nothing (the launcher's way with an
    output its producer did not write) instead of raising.
    """
    if not is_remote(uri):
        source = _local(uri)
        if not os.path.exists(source):
            raise StorageError(f"{uri}: no such file or directory")
        if os.path.isdir(source):
            shutil.copytree(source, local, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            shutil.copyfile(source, local)
        return local
    fs, path = filesystem(uri)
    try:
        if fs.isfile(path):
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            fs.get_file(path, local)
            return local
        listed = files(uri)
        if not listed and missing_ok:
            return local
        if not listed:
            raise StorageError(f"{uri}: nothing there (was it deleted since it was recorded?)")
        for rel in listed:
            target = os.path.join(local, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(f"{path}/{rel}", target)
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None
    os.makedirs(local, exist_ok=True)
    return local


def upload(local: str, uri: str, progress: Callable[[], None] | None = None) -> int:
    """Copy the local file or folder ``local`` to ``uri``; returns the number of files.

    A folder's files land under ``uri/`` with their relative paths (what the launcher does
    with an output artifact's local path after the command). ``progress`` is called after
    each file uploaded.
    """
    if not os.path.exists(local):
        raise StorageError(f"{local}: nothing to upload to {uri}")
    if not is_remote(uri):
        download(local, _local(uri))
        return len(files(local))
    fs, path = filesystem(uri)
    try:
        if os.path.isfile(local):
            fs.put_file(local, path)
            if progress:
                progress()
            return 1
        count = 0
        for rel in sorted(files(local)):
            fs.put_file(os.path.join(local, *rel.split("/")), f"{path}/{rel}")
            count += 1
            if progress:
                progress()
        return count
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None


def remove(uri: str) -> None:
    """Delete the file or folder at ``uri`` (nothing there is fine)."""
    if not is_remote(uri):
        path = _local(uri)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        return
    fs, path = filesystem(uri)
    try:
        if fs.exists(path) or fs.find(path, maxdepth=1):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        return
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None


def localize(uri: str) -> str:
    """A local path holding ``uri``'s files, for executors that read from disk.

    The path itself when local; the launcher's copy when the launcher already downloaded
    it (an input artifact in a KFP pod); else a copy fetched into a new temporary folder.
    """
    if not is_remote(uri):
        path = _local(uri)
        if not os.path.exists(path):
            raise StorageError(f"{uri}: no such file or directory (was it deleted since it was recorded?)")
        return path
    mounted = launcher_path(uri)
    if mounted and os.path.exists(mounted):
        return mounted
    target = tempfile.mkdtemp(prefix="kubetfx-fetch-")
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if is_file(uri):
        return download(uri, os.path.join(target, name))
    return download(uri, target)


PATTERN_CHARS = "*?["
SPAN_PLACEHOLDER = "{SPAN}"


def glob_files(uri: str) -> list[str]:
    """Object-store files a pattern names (``*``, ``?``, ``[...]``, ``{SPAN}`` for digits,
    matched here as ``*``), as ``bucket/key`` paths of :func:`filesystem`; a plain URI names
    its file, or every file under its folder."""
    fs, path = filesystem(uri)
    text = path.replace(SPAN_PLACEHOLDER, "*")
    try:
        if any(c in text for c in PATTERN_CHARS):
            return sorted(m for m in fs.glob(text) if fs.isfile(m))
        if fs.isfile(path):
            return [path]
        return sorted(f"{path}/{rel}" for rel in files(uri))
    except FileNotFoundError:
        return []
    except Exception as err:  # noqa: BLE001
        raise _wrap(uri, err) from None


def localize_pattern(uri: str) -> str:
    """A local copy of the object-store files ``uri`` names (a file, folder or pattern, see
    :func:`glob_files`), in a new temporary folder; returns the same pattern rooted there,
    so the caller matches it as it would a local one."""
    if not is_remote(uri):
        return _local(uri)
    fs, path = filesystem(uri)
    target = tempfile.mkdtemp(prefix="kubetfx-fetch-")
    for name in glob_files(uri):
        local = os.path.join(target, *name.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        try:
            fs.get_file(name, local)
        except Exception as err:  # noqa: BLE001
            raise _wrap(uri, err) from None
    return os.path.join(target, *path.split("/"))
