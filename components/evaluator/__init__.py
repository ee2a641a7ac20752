"""Evaluator: TFMA metrics, overall and per slice, and the blessing (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.evaluator.component import evaluator

__all__ = ["evaluator"]
