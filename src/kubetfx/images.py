"""The one place that names the component image.

Every component.yaml is compiled from here; change the registry with the
KUBETFX_IMAGE_REGISTRY environment variable at compile time. The image itself is
built from the repository's Containerfile by scripts/image.sh, which tags it with
exactly these references (docs/image.md).
"""

from __future__ import annotations

import os

from kubetfx import __version__

REGISTRY = os.environ.get("KUBETFX_IMAGE_REGISTRY", "ghcr.io/kubetfx")
RUNTIME_IMAGE = f"{REGISTRY}/kubetfx-runtime:{__version__}"
GPU_IMAGE = f"{REGISTRY}/kubetfx-runtime-gpu:{__version__}"
