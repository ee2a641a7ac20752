"""Trainer: built-in Keras tabular model or a user's run_fn, GPU-aware (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.trainer.component import trainer

__all__ = ["trainer"]
