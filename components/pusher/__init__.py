"""Pusher: publish a blessed model where TF Serving picks it up (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.pusher.component import pusher

__all__ = ["pusher"]
