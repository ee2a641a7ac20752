"""jsonschema for the model card's format checks (``uri``, ``date``), imported without the
part that takes a second.

``import jsonschema`` imports ``rfc3987_syntax`` when it is installed (it is, beside
Jupyter), and that module compiles a Lark grammar at import: about 1.1 s of the 1.3 s
jsonschema takes, in every model card task and every warm worker. It backs only the
``iri`` and ``iri-reference`` formats, which the Model Card Toolkit schema does not use
(``uri`` is checked by ``rfc3986-validator``, ``date`` by the standard library). So this
module imports jsonschema with ``rfc3987_syntax`` hidden when nothing in the process has
imported jsonschema yet; if something has, that module is used as it is.

Import it where the check runs (``from kubetfx.modelcard.formats import jsonschema``):
importing ``kubetfx.modelcard`` stays free of jsonschema.
"""

from __future__ import annotations

import sys
from types import ModuleType


def _import() -> ModuleType:
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import jsonschema as module

        return module
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # an ImportError, this once
    try:
        import jsonschema as module
    finally:
        if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
            del sys.modules["rfc3987_syntax"]
    return module


jsonschema = _import()

__all__ = ["jsonschema"]
