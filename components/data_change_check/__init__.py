"""data_change_check: whether the data changed since the last finished training run (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.data_change_check.component import data_change_check

__all__ = ["data_change_check"]
