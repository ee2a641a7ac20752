"""serving_check: a trained model checked in a model server under load (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.serving_check.component import serving_check

__all__ = ["serving_check"]
