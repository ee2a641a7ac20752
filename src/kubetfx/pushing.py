"""Publishing models for serving: TF Serving's layout, atomic, and only under allowed roots.

Layout: ``<destination>/<model_name>/<version>/`` with numeric versions that only grow (a
model server serves the highest). A reader never sees a partial version:

* on a filesystem, files are copied into a hidden ``.<version>.partial-<pid>-<token>``
  folder (not numeric, so TF Serving ignores it), flushed to disk, and the finished folder
  is renamed into place with ``renameat2(RENAME_NOREPLACE)``, which refuses to replace
  anything already there (even an empty folder); if another pusher took the number a
  moment ago, this one takes the next;
* on an object store there is no rename: every file is uploaded before ``saved_model.pb``,
  the file TF Serving needs to load a version, and version numbers are claimed first with
  a conditional write (``If-None-Match: *``) of ``.kubetfx-claims/<version>``, so two
  pushers never share one number where the store honours conditional writes (AWS S3 does).

Destinations must lie under a root from kubetfx's settings (``KUBETFX_PUSH_ROOT``), never
from a pipeline parameter: paths with ``..`` and symlinks that lead out are refused.

Object stores are reached through fsspec (s3fs for ``s3://``); credentials and endpoint
come from the usual AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for MinIO and other S3-compatible stores).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from kubetfx.artifacts.layout import SAVED_MODEL_FILE
from kubetfx.errors import ConfigError, KubetfxError, ParameterError, missing_runtime
from kubetfx.faults import failpoint
from kubetfx.settings import PUSH_ROOT_ENV, resolve_push_roots

# TF Serving loads a version once one of these is there: they are written last.
SIGNAL_FILES = (SAVED_MODEL_FILE, "saved_model.pbtxt")
CLAIMS_DIR = ".kubetfx-claims"
PARTIAL_MARK = ".partial-"
STALE_PARTIAL_SECONDS = 24 * 3600  # a partial folder this old is a killed push's leftover
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION_NAME = re.compile(r"^[0-9]+$")

Progress = Callable[[str], None]


class PushError(KubetfxError):
    """A model cannot be published where or as asked."""


class DestinationError(PushError):
    """A push destination lies outside the allowed roots, or is malformed."""


@dataclass(frozen=True)
class Published:
    """One published version."""

    model_name: str
    version: int
    uri: str  # the version folder: an absolute path or scheme://bucket/...
    destination: str  # the destination it was published under
    pushed_at: str  # ISO-8601, UTC


# ---------------------------------------------------------------------- names and roots


def check_model_name(model_name: str) -> str:
    """Refuse a model name that is not one plain path segment (it becomes a folder name)."""
    if not MODEL_NAME_PATTERN.match(model_name or ""):
        raise ParameterError(
            f"model_name {model_name!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return model_name


def _is_uri(location: str) -> bool:
    return "://" in location


def _uri_parts(uri: str, what: str) -> tuple[str, str, list[str]]:
    """(scheme, bucket, path segments) of an object-store URI."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc or parts.query or parts.fragment:
        raise DestinationError(f"{what} {uri!r} is not a scheme://bucket/prefix URI")
    return parts.scheme.lower(), parts.netloc, [s for s in parts.path.split("/") if s]


def _uri(scheme: str, bucket: str, segments: Sequence[str]) -> str:
    return f"{scheme}://{bucket}" + "".join(f"/{s}" for s in segments)


def _normalize_root(root: str) -> str:
    root = root.strip()
    if root.startswith("file://"):
        root = root[len("file://") :]
    if not root:
        raise ConfigError(f"an empty push root in {PUSH_ROOT_ENV}; give paths or URIs, comma-separated")
    if _is_uri(root):
        try:
            return _uri(*_uri_parts(root, "push root"))
        except DestinationError as err:
            raise ConfigError(f"{err} (from {PUSH_ROOT_ENV})") from None
    return os.path.abspath(root)


def _has_dotdot(location: str) -> bool:
    return ".." in re.split(r"[/\\]", location)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def resolve_destination(destination: str, allowed_roots: Sequence[str] | None = None) -> str:
    """The destination to publish under, checked against the allowed roots.

    Empty means the first allowed root; a relative path is taken relative to the first
    allowed root; absolute paths and URIs must lie under one of the roots. Local
    destinations are returned resolved (``realpath``), so a symlink cannot lead out.

    Args:
        destination: A path, a ``file://`` path, a ``scheme://bucket/prefix`` URI, or "".
        allowed_roots: Roots to allow; None reads kubetfx's settings (``KUBETFX_PUSH_ROOT``).

    Raises:
        DestinationError: The destination contains ``..`` or lies outside every root.
        ConfigError: An allowed root is malformed.
    """
    roots = [_normalize_root(r) for r in (resolve_push_roots() if allowed_roots is None else allowed_roots)]
    if not roots:
        raise ConfigError(f"no push roots are configured; set {PUSH_ROOT_ENV}")
    given = (destination or "").strip()
    if given.startswith("file://"):
        given = given[len("file://") :]
    if _has_dotdot(given):
        raise DestinationError(f"push destination {destination!r} contains '..'; name it without '..'")
    if not given:
        candidate = roots[0]
    elif _is_uri(given) or os.path.isabs(given):
        candidate = given
    else:
        candidate = f"{roots[0]}/{given}" if _is_uri(roots[0]) else os.path.join(roots[0], given)

    detail = ""
    if _is_uri(candidate):
        scheme, bucket, segments = _uri_parts(candidate, "push destination")
        for root in filter(_is_uri, roots):
            r_scheme, r_bucket, r_segments = _uri_parts(root, "push root")
            if (scheme, bucket) == (r_scheme, r_bucket) and segments[: len(r_segments)] == r_segments:
                return _uri(scheme, bucket, segments)
    else:
        real = os.path.realpath(candidate)
        for root in filter(lambda r: not _is_uri(r), roots):
            if _inside(real, os.path.realpath(root)):
                return real
        if real != os.path.normpath(os.path.abspath(candidate)):
            detail = f" (it resolves to {real} through a symlink)"
    raise DestinationError(
        f"push destination {destination or candidate!r}{detail} is outside the allowed roots "
        f"({', '.join(roots)}); push under one of them, or change the roots with {PUSH_ROOT_ENV} "
        "(comma-separated) where the Pusher runs"
    )


def model_location(destination: str, model_name: str) -> str:
    """``<destination>/<model_name>`` (the folder TF Serving's ``model_base_path`` names)."""
    check_model_name(model_name)
    return f"{destination}/{model_name}" if _is_uri(destination) else os.path.join(destination, model_name)


# ---------------------------------------------------------------------- filesystems


def _filesystem(location: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for a local path or a URI."""
    try:
        import fsspec
    except ImportError as err:  # pragma: no cover - runtime profile installs it
        raise missing_runtime("fsspec", err) from err
    if not _is_uri(location):
        return fsspec.filesystem("file"), location
    from kubetfx import storage

    try:
        # A fresh instance: the endpoint and credentials are read from the environment now
        # (minio:// is the S3 protocol at the cluster's MinIO endpoint, see kubetfx.storage).
        return storage.filesystem(location)
    except storage.StorageError as err:
        if isinstance(err.__cause__, ImportError):
            scheme = location.split("://")[0]
            raise missing_runtime(
                f"the filesystem for {scheme}:// (s3fs, gcsfs, ...)", err.__cause__
            ) from err
        raise DestinationError(f"push destination {location!r}: {err}") from None


def _is_local_fs(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


@dataclass
class _Tree:
    """The files (and folders) of a model to publish, signal files last."""

    fs: Any
    root: str
    files: list[str]  # relative, "/"-separated
    dirs: list[str]


def _tree(fs: Any, root: str, what: str) -> _Tree:
    root = root.rstrip("/")
    try:
        found = fs.find(root, withdirs=True, detail=True)
    except FileNotFoundError:
        found = {}
    prefix = fs._strip_protocol(root).rstrip("/") + "/"
    files: list[str] = []
    dirs: list[str] = []
    for path, info in found.items():
        rel = path[len(prefix) :] if path.startswith(prefix) else ""
        if not rel:
            continue
        (dirs if info.get("type") == "directory" else files).append(rel)
    if not any(f in SIGNAL_FILES for f in files):
        raise PushError(f"{what} {root} has no {SAVED_MODEL_FILE}: it is not a SavedModel; nothing published")
    files.sort(key=lambda f: (f in SIGNAL_FILES, f))
    return _Tree(fs=fs, root=fs._strip_protocol(root).rstrip("/"), files=files, dirs=sorted(dirs))


def _child_names(fs: Any, path: str) -> list[str]:
    try:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return []


def _numeric(names: Sequence[str]) -> list[int]:
    return sorted(int(n) for n in names if _VERSION_NAME.match(n))


def list_versions(destination: str, model_name: str) -> list[int]:
    """Version numbers under ``<destination>/<model_name>`` (numeric folder names), ascending."""
    fs, path = _filesystem(model_location(destination, model_name))
    fs.invalidate_cache(path)
    return _numeric(_child_names(fs, path))


# ---------------------------------------------------------------------- local publishing

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


@functools.cache
def _renameat2() -> Any:
    """glibc's renameat2, or None where there is none (not Linux, old libc)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``; FileExistsError if anything (even an empty folder) is at ``dst``."""
    fn = _renameat2()
    if fn is not None:
        if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), src, None, dst)  # EEXIST: FileExistsError
    # No RENAME_NOREPLACE here (another OS, or a filesystem without it): rename() refuses a
    # non-empty target by itself, and only an empty folder could be replaced, which kubetfx
    # never creates at a version's name; look for one first.
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    try:
        os.rename(src, dst)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from err
        raise


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_partials(model_dir: str) -> None:
    now = time.time()
    for entry in os.scandir(model_dir):
        if entry.name.startswith(".") and PARTIAL_MARK in entry.name and entry.is_dir(follow_symlinks=False):
            if now - entry.stat(follow_symlinks=False).st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)


def _check_not_symlink(model_dir: str) -> None:
    if os.path.islink(model_dir):
        raise DestinationError(
            f"{model_dir} is a symlink; the Pusher does not follow symlinks out of a push root "
            "(replace it with a folder)"
        )


def _copy_local(tree: _Tree, src_rel: str, dst: str) -> None:
    src = f"{tree.root}/{src_rel}"
    if _is_local_fs(tree.fs):
        shutil.copyfile(src, dst)
    else:
        tree.fs.get_file(src, dst)
    _fsync(dst)


def _publish_local(tree: _Tree, model_dir: str, progress: Progress | None) -> int:
    _check_not_symlink(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    _check_not_symlink(model_dir)
    _remove_stale_partials(model_dir)
    version = (_numeric(os.listdir(model_dir)) or [0])[-1] + 1
    partial = os.path.join(model_dir, f".{version}{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:6]}")
    os.mkdir(partial)
    try:
        for rel in tree.dirs:
            os.makedirs(os.path.join(partial, rel), exist_ok=True)
        for rel in tree.files:
            dst = os.path.join(partial, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _copy_local(tree, rel, dst)
            if progress:
                progress(rel)
            failpoint("pusher.copy")  # a test hook (kubetfx.faults): part of the version copied
        for folder, _, _ in os.walk(partial):
            _fsync(folder)
        while True:
            try:
                _rename_noreplace(partial, os.path.join(model_dir, str(version)))
                break
            except FileExistsError:
                # Another pusher published this number meanwhile: take the next one.
                version = max(version + 1, (_numeric(os.listdir(model_dir)) or [0])[-1] + 1)
        _fsync(model_dir)
        return version
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# ---------------------------------------------------------------------- object stores


def _claim_version(fs: Any, model_path: str) -> int:
    """Claim the next free version number with a conditional write; returns it."""
    claims = f"{model_path}/{CLAIMS_DIR}"
    fs.invalidate_cache(model_path)
    fs.invalidate_cache(claims)
    taken = _numeric(_child_names(fs, model_path)) + _numeric(_child_names(fs, claims))
    version = max(taken, default=0) + 1
    note = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "claimed_at": _now()}).encode()
    while True:
        try:
            fs.pipe_file(f"{claims}/{version}", note, mode="create")
            return version
        except FileExistsError:
            version += 1


def _copy_remote(tree: _Tree, src_rel: str, fs: Any, dst: str) -> None:
    src = f"{tree.root}/{src_rel}"
    if _is_local_fs(tree.fs):
        fs.put_file(src, dst)
    elif type(tree.fs) is type(fs):
        fs.copy(src, dst)  # server-side copy within one store
    else:
        fs.pipe_file(dst, tree.fs.cat_file(src))


def _publish_remote(tree: _Tree, fs: Any, model_path: str, progress: Progress | None) -> int:
    version = _claim_version(fs, model_path)
    # saved_model.pb comes last in tree.files: TF Serving loads a version only once it is there.
    for rel in tree.files:
        _copy_remote(tree, rel, fs, f"{model_path}/{version}/{rel}")
        if progress:
            progress(rel)
        failpoint("pusher.copy")
    return version


# ---------------------------------------------------------------------- publish, republish


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_uri(destination: str, model_name: str, version: int) -> str:
    location = model_location(destination, model_name)
    return f"{location}/{version}" if _is_uri(location) else os.path.join(location, str(version))


def _publish_tree(tree: _Tree, model_name: str, destination: str, progress: Progress | None) -> Published:
    location = model_location(destination, model_name)
    fs, path = _filesystem(location)
    if _is_local_fs(fs):
        version = _publish_local(tree, path, progress)
    else:
        version = _publish_remote(tree, fs, path, progress)
    return Published(
        model_name=model_name,
        version=version,
        uri=_version_uri(destination, model_name, version),
        destination=destination,
        pushed_at=_now(),
    )


def publish(
    source_dir: str,
    model_name: str,
    destination: str = "",
    *,
    allowed_roots: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Published:
    """Publish a SavedModel folder as the next version of ``model_name``.

    Args:
        source_dir: A SavedModel folder (with ``saved_model.pb``), local or a URI.
        model_name: The model's folder name under the destination.
        destination: Where to publish (see :func:`resolve_destination`); "" is the first root.
        allowed_roots: Roots to allow; None reads kubetfx's settings (``KUBETFX_PUSH_ROOT``).
        progress: Called with each file's relative path once it is written.

    Returns:
        The version published and where.

    Raises:
        DestinationError: The destination is not allowed.
        PushError: ``source_dir`` is not a SavedModel.
    """
    check_model_name(model_name)
    target = resolve_destination(destination, allowed_roots)
    fs, path = _filesystem(source_dir if _is_uri(source_dir) else os.path.abspath(source_dir))
    tree = _tree(fs, path, "model folder")
    return _publish_tree(tree, model_name, target, progress)


def republish(
    model_name: str,
    version: int,
    destination: str = "",
    *,
    allowed_roots: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Published:
    """Publish an earlier version's files again as a new, highest version (a rollback).

    Raises:
        PushError: The version does not exist (or has no ``saved_model.pb``) at the destination.
    """
    check_model_name(model_name)
    target = resolve_destination(destination, allowed_roots)
    source = _version_uri(target, model_name, version)
    fs, path = _filesystem(source)
    fs.invalidate_cache(path)
    if version < 0 or not fs.exists(path):
        versions = list_versions(target, model_name)
        raise PushError(
            f"version {version} of model {model_name!r} does not exist at "
            f"{model_location(target, model_name)} (versions there: "
            f"{', '.join(map(str, versions)) or 'none'})"
        )
    tree = _tree(fs, path, f"version {version} of model {model_name!r},")
    return _publish_tree(tree, model_name, target, progress)
