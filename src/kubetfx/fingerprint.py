"""Content fingerprints of files and folders, for cache keys and lineage.

A fingerprint hashes the bytes (not names of artifacts or modification times), so a
changed file at the same URI changes the key, and an unchanged copy elsewhere does not.
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
from importlib import resources
from pathlib import Path

_CHUNK = 1 << 20
# (path, size, mtime_ns, inode) -> digest, so a file is read once per process while unchanged.
_memo: dict[tuple[str, int, int, int], str] = {}
_memo_lock = threading.Lock()

PACKAGE_SCHEME = "pkg://"


def local_path(uri: str) -> Path | None:
    """The local path a URI names, or None for remote URIs.

    ``pkg://PACKAGE/PATH`` names a data file shipped inside an installed Python package
    (for example ``pkg://palmerpenguins/data/penguins.csv``).
    """
    if uri.startswith(PACKAGE_SCHEME):
        package, _, rel = uri[len(PACKAGE_SCHEME) :].partition("/")
        try:
            return Path(str(resources.files(package).joinpath(rel)))
        except ModuleNotFoundError:
            return None
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if "://" in uri:
        return None
    return Path(uri)


def _file_digest(path: str, stat: os.stat_result) -> str:
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _memo_lock:
        _memo[key] = value
    return value


def fingerprint_files(paths: list[str], base: str | None = None) -> str:
    """Fingerprint of a set of files: names relative to ``base``, sizes and contents."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(paths):
        stat = os.stat(path)
        rel = os.path.relpath(path, base) if base else os.path.basename(path)
        digest.update(f"{rel}\0{stat.st_size}\0{_file_digest(path, stat)}\n".encode())
    return digest.hexdigest()


def fingerprint_path(path: str | os.PathLike[str]) -> str | None:
    """Fingerprint of a file or a folder tree, or None if nothing is there."""
    path = str(path)
    if os.path.isfile(path):
        return fingerprint_files([path])
    if os.path.isdir(path):
        files = [
            os.path.join(root, name)
            for root, dirs, names in os.walk(path)
            for name in names
            if not name.startswith(".")
        ]
        return fingerprint_files(files, base=path)
    return None


def fingerprint_remote(uri: str) -> str | None:
    """Fingerprint of a file or folder in an object store, or None if nothing is there.

    The same digest as :func:`fingerprint_path` gives a local copy of the same files:
    inside a KFP pod, where the launcher already downloaded ``uri``, that copy is hashed
    instead of reading the store again.
    """
    from kubetfx import storage

    if storage.scheme_of(uri) not in storage.REMOTE_SCHEMES:
        return None
    mounted = storage.launcher_path(uri)
    if mounted and os.path.exists(mounted):
        return fingerprint_path(mounted)
    listed = storage.files(uri)
    if not listed:
        return None
    single = storage.is_file(uri)
    digest = hashlib.blake2b(digest_size=16)
    for rel in sorted(listed):
        name = rel.rsplit("/", 1)[-1]
        if not single and name.startswith("."):
            continue
        content = hashlib.blake2b(digest_size=16)
        with storage.open_uri(uri if single else storage.join(uri, rel), "rb") as f:
            while chunk := f.read(_CHUNK):
                content.update(chunk)
        digest.update(f"{rel}\0{listed[rel]}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


def _fingerprint_remote_pattern(uri: str) -> str | None:
    """:func:`fingerprint_uri` of an object-store pattern: the digest a local copy of the
    matching files, laid out the same way, would have."""
    import posixpath

    from kubetfx import storage

    matches = storage.glob_files(uri)
    if not matches:
        return None
    fs, pattern = storage.filesystem(uri)
    base = posixpath.dirname(pattern)
    digest = hashlib.blake2b(digest_size=16)
    for name in matches:
        content = hashlib.blake2b(digest_size=16)
        size = 0
        with fs.open(name, "rb") as f:
            while chunk := f.read(_CHUNK):
                content.update(chunk)
                size += len(chunk)
        digest.update(f"{posixpath.relpath(name, base)}\0{size}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


def fingerprint_uri(uri: str) -> str | None:
    """Fingerprint of the data a URI or path pattern names, if any.

    Patterns may use ``*`` or a ``{SPAN}`` placeholder; every matching file counts.
    Object-store URIs (``s3://``, ``gs://``, ``minio://``) are read through
    :mod:`kubetfx.storage` (patterns are local only).
    """
    path = local_path(uri)
    if path is None:
        from kubetfx import storage

        if storage.scheme_of(uri) not in storage.REMOTE_SCHEMES:
            return None
        if "{SPAN}" in uri or any(c in uri for c in "*?["):
            return _fingerprint_remote_pattern(uri)
        return fingerprint_remote(uri)
    text = str(path)
    if "{SPAN}" in text or any(c in text for c in "*?["):
        matches = [m for m in glob.glob(text.replace("{SPAN}", "*")) if os.path.isfile(m)]
        return fingerprint_files(matches, base=os.path.dirname(text)) if matches else None
    return fingerprint_path(path)
