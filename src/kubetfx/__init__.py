"""kubetfx: reusable Kubeflow Pipelines components built on the TFX libraries.

Importing this package is cheap on purpose: it pulls in no TensorFlow, TFDV, TFMA,
Beam or ML Metadata. Heavy libraries are imported only inside executors and the
local runner.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
