"""data_fingerprint's executor: which files an input URI names now, and their content hash.

It names the files exactly as ExampleGen does (:func:`resolve_input`, the newest span of a
``{SPAN}`` pattern) and hashes them with the same function, so its ``fingerprint`` equals
the ``fingerprint`` ExampleGen reports for the same data. Reading the files' bytes is the
whole cost: no parsing, no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetfx.artifacts.tabular import resolve_input
from kubetfx.fingerprint import fingerprint_files


@dataclass
class DataFingerprint:
    """The content fingerprint of the data an input URI names, and its span."""

    fingerprint: str
    span: int
    files: int


def run(input_uri: str) -> DataFingerprint:
    """Fingerprint the files ``input_uri`` names (a file, folder, glob or ``{SPAN}`` pattern)."""
    files, span = resolve_input(input_uri)
    return DataFingerprint(fingerprint=fingerprint_files(files), span=span, files=len(files))
