"""model_resolver's executor: the Evaluator's baseline from ML Metadata.

The model being served for ``model_name`` (its latest push, rollbacks included), else the
latest model the Evaluator blessed under that name in the pipeline, never the candidate
itself (:func:`kubetfx.lineage.baseline.resolve_baseline`); with an alias, the version that
alias names. Without a lineage store there is no baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubetfx.lineage.store import Store


@dataclass(frozen=True)
class Resolution:
    """The baseline found (or not), as the component's output parameters, and a line for the log."""

    found: bool
    model_uri: str
    model_id: int
    source: str  # "served ...", "blessed ...", or "none..."
    message: str


def resolve(
    store: Store | None, model_name: str, pipeline_name: str, candidate_uri: str = "", *, alias: str = ""
) -> Resolution:
    """The baseline for ``model_name`` in ``pipeline_name``; ``candidate_uri``: the model
    about to be evaluated, never its own baseline; ``alias``: compare with the version this
    alias names (e.g. ``production``) when it names one."""
    from kubetfx.lineage.aliases import check_alias
    from kubetfx.lineage.baseline import resolve_baseline
    from kubetfx.lineage.record import find_artifact

    if alias:
        check_alias(alias)  # a malformed alias fails the run, even with lineage off
    if store is None:
        return Resolution(
            False, "", 0, "none: lineage is off", "lineage is off (no KUBETFX_METADATA): no baseline"
        )
    candidate_id = 0
    if candidate_uri:
        found = find_artifact(store, candidate_uri)
        candidate_id = found.id if found is not None else 0
    baseline = resolve_baseline(store, model_name, pipeline_name, candidate_id, alias)
    if baseline is None:
        return Resolution(False, "", 0, "none", f"no model {model_name!r} served or blessed yet: no baseline")
    return Resolution(
        True,
        baseline.model_uri,
        baseline.model_id,
        baseline.detail,
        f"baseline for {model_name!r} is model {baseline.model_id} ({baseline.detail})",
    )
