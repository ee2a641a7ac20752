"""kserve_deployer: serve a pushed version on KServe through a stepped canary rollout (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.kserve_deployer.component import kserve_deployer

__all__ = ["kserve_deployer"]
