"""Opening an artifact or input file wherever it lives: a local path, ``pkg://`` data
shipped with kubetfx, the launcher's local copy in a KFP pod, or an object store.

The transport is :mod:`kubetfx.storage`; this module is what executors and component
bodies call, so none of them tells the cases apart itself.
"""

from __future__ import annotations

from kubetfx import storage
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import local_path


def local_dir(uri: str) -> str:
    """A local path holding ``uri``'s files: the path itself, the launcher's copy, or a
    fresh download (see :func:`kubetfx.storage.localize`)."""
    return storage.localize(uri)


def read_text(path_or_uri: str, missing: str) -> str:
    """The text of one file: local, ``pkg://`` or in an object store; ``missing`` is the
    message of the InputDataError raised when there is no such file."""
    path = local_path(path_or_uri)
    if path is None and storage.scheme_of(path_or_uri) in storage.REMOTE_SCHEMES:
        try:
            return storage.read_bytes(path_or_uri).decode()
        except storage.StorageError as err:
            raise InputDataError(f"{missing} ({err})") from None
    if path is None or not path.is_file():
        raise InputDataError(missing)
    return path.read_text()
