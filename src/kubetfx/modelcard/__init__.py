"""Model cards built from lineage alone: ``model_card.json`` and an HTML card.

:func:`~kubetfx.modelcard.card.build` reads everything from ML Metadata (the audit record
of :mod:`kubetfx.lineage.audit`, the artifacts it names, the serving check the Pusher
recorded, stepped rollouts and version aliases); no artifact file is opened, so a card
of a cluster's model can be made from a laptop. :func:`~kubetfx.modelcard.card.to_json`
maps it onto the Model Card Toolkit's schema (v0.0.2, shipped in
``kubetfx.schemas/model_card``) and :func:`~kubetfx.modelcard.card.validate` checks it;
:func:`~kubetfx.modelcard.html.render` draws the card a reviewer reads.
"""

from kubetfx.modelcard.card import ModelCard, ModelCardError, build, to_json, validate, write

__all__ = ["ModelCard", "ModelCardError", "build", "to_json", "validate", "write"]
