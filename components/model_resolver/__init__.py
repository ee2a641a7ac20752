"""model_resolver: the Evaluator's baseline, found in ML Metadata (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.model_resolver.component import model_resolver

__all__ = ["model_resolver"]
