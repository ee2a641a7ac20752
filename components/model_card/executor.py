"""model_card's executor: the card of a PushedModel, from lineage (:mod:`kubetfx.modelcard`).

With lineage off there is nothing to build a card from but the PushedModel's own
metadata: the card then says so, and is still valid against the toolkit's schema.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubetfx.artifacts.kinds import MODEL_CARD, PUSHED_MODEL, TYPE_KEY, expect

if TYPE_CHECKING:
    from kubetfx.lineage.store import Store


@dataclass(frozen=True)
class CardResult:
    """What was written: the JSON document, the HTML page, and a line for the log."""

    document: dict[str, Any]
    html: str
    model_name: str
    version: int
    summary: str

    def metadata(self) -> dict[str, Any]:
        """The ``model_card`` artifact's metadata."""
        from kubetfx.modelcard.card import JSON_FILE, SCHEMA_VERSION

        return {
            TYPE_KEY: MODEL_CARD,
            "model_name": self.model_name,
            "version": self.version,
            "schema_version": SCHEMA_VERSION,
            "file": JSON_FILE,
        }


def run(store: Store | None, pushed_uri: str, pushed_metadata: dict[str, Any], out_dir: str) -> CardResult:
    """Write ``model_card.json`` into ``out_dir`` and return it with the HTML card."""
    from kubetfx.modelcard.card import JSON_FILE, ModelCardError, build, to_json, validate
    from kubetfx.modelcard.html import render

    expect(PUSHED_MODEL, pushed_metadata, "pushed_model", pushed_uri)
    if store is None:
        document, page, name, version = _without_lineage(pushed_metadata)
    else:
        from kubetfx.lineage.graph import MLMDLineage
        from kubetfx.lineage.record import find_artifact

        found = find_artifact(store, pushed_uri)
        if found is None:
            raise ModelCardError(
                f"pushed_model {pushed_uri} is not in lineage ({store}); a card is built from lineage: "
                "run the Pusher with lineage on (KUBETFX_METADATA)"
            )
        card = build(MLMDLineage(store), str(found.id))
        document, page = to_json(card), render(card)
        name, version = card.record.model_name, card.record.version
    validate(document)
    path = os.path.join(out_dir, JSON_FILE)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(json.dumps(document, indent=1, sort_keys=True) + "\n")
    os.replace(partial, path)
    # The output folder is a staging folder until the task ends: name the file, not the path.
    summary = (
        f"card of {name} {'version ' + str(version) if version else '(not pushed)'}: {JSON_FILE}, "
        "valid against the Model Card Toolkit's schema"
    )
    return CardResult(document, page, name, version, summary)


def _without_lineage(pushed: dict[str, Any]) -> tuple[dict[str, Any], str, str, int]:
    from kubetfx.modelcard.card import SCHEMA_VERSION
    from kubetfx.reports import page

    name = str(pushed.get("model_name", "model"))
    version = int(pushed.get("version") or 0)
    why = "lineage is off (no KUBETFX_METADATA): this card holds only what the Pusher recorded"
    document = {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": name,
            "overview": f"{name} version {version}" if version else f"{name} (not pushed)",
            "version": {"name": str(version) if version else "not pushed"},
        },
        "considerations": {"limitations": [{"description": why}]},
    }
    text = page(f"Model card: {name}", [f"<p>{html.escape(why)}.</p>"])
    return document, text, name, version
