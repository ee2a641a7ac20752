"""ExampleValidator: anomalies, drift and skew, with a pass/fail policy (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.example_validator.component import example_validator

__all__ = ["example_validator"]
