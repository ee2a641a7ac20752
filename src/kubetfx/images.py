"""The one place that names the component images.

Every component.yaml is compiled from here; change the registry with the
KUBETFX_IMAGE_REGISTRY environment variable at compile time. The images themselves are
built from the repository's Containerfile by scripts/image.sh, which tags them with
exactly these references (docs/image.md):

* ``RUNTIME_IMAGE``: the CPU image every component names (``requirements/runtime.txt``);
* ``GPU_IMAGE``: the same set plus TensorFlow's CUDA libraries (``requirements/runtime-gpu.txt``),
  which a task gets when an accelerator profile gives it GPUs (:func:`gpu_variant`).
"""

from __future__ import annotations

import os
import re

from kubetfx import __version__
from kubetfx.errors import ConfigError

REGISTRY = os.environ.get("KUBETFX_IMAGE_REGISTRY", "ghcr.io/kubetfx")
RUNTIME_NAME = "kubetfx-runtime"
GPU_NAME = "kubetfx-runtime-gpu"
RUNTIME_IMAGE = f"{REGISTRY}/{RUNTIME_NAME}:{__version__}"
GPU_IMAGE = f"{REGISTRY}/{GPU_NAME}:{__version__}"

# [registry/path/]kubetfx-runtime[:tag][@digest]
_RUNTIME_REF = re.compile(
    rf"^(?P<prefix>(?:[^@]*/)?){re.escape(RUNTIME_NAME)}(?P<tag>:[^/@]+)?(?P<digest>@.+)?$"
)


def gpu_variant(image: str) -> str | None:
    """The GPU image that goes with the kubetfx CPU image ``image`` (same registry and tag).

    None when ``image`` is not a kubetfx runtime image (a user's own component image: only
    its owner knows its GPU variant) or is already the GPU one. A CPU image named by digest
    has no GPU counterpart that can be derived from it: that is an error.
    """
    match = _RUNTIME_REF.match(image)
    if match is None:
        return None
    if match["digest"]:
        raise ConfigError(
            f"image {image!r} is kubetfx's CPU image pinned by digest; the GPU variant has its own "
            f"digest: name it by tag ({match['prefix']}{RUNTIME_NAME}:VERSION) when compiling with "
            "an accelerator profile"
        )
    return f"{match['prefix']}{GPU_NAME}{match['tag'] or ''}"
