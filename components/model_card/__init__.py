"""model_card: the card of a pushed model, from lineage alone (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.model_card.component import model_card

__all__ = ["model_card"]
