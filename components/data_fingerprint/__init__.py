"""data_fingerprint: the content hash of the data a run is about to read (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.data_fingerprint.component import data_fingerprint

__all__ = ["data_fingerprint"]
