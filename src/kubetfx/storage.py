"""Reading artifacts that arrive by reference (a URI parameter, not a KFP input artifact)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kubetfx.errors import KubetfxError


def localize(uri: str) -> str:
    """A local directory holding ``uri``'s files: the path itself when it is local,
    else a copy fetched through fsspec (``gs://``, ``s3://``, ...) into a temp folder.
    """
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not os.path.exists(path):
            raise KubetfxError(f"{uri}: no such file or directory (was it deleted since it was recorded?)")
        return path
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as err:
        raise KubetfxError(f"{uri}: cannot open this kind of URI here: {err}") from None
    target = Path(tempfile.mkdtemp(prefix="kubetfx-fetch-"))
    try:
        fs.get(root.rstrip("/") + "/", str(target) + "/", recursive=True)
    except (FileNotFoundError, OSError) as err:
        raise KubetfxError(f"{uri}: cannot fetch it: {err}") from None
    return str(target)
