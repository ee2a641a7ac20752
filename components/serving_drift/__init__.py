"""serving_drift: serving traffic against the served model's training data (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.serving_drift.component import serving_drift

__all__ = ["serving_drift"]
