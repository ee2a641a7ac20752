"""Which model is the baseline: the one being served, else the latest blessed one.

* Served: the newest ``kubetfx.PushedModel`` with ``pushed == 1`` for the model name,
  pushes and rollbacks alike (a rollback is recorded as a push of an older model), then
  the Model artifact its execution took as input ``model``; a version that is the canary
  of a stepped rollout still in progress, or one the canary analysis rolled back, is not
  what serves the traffic: the version before it is.
* Else: the newest ``kubetfx.ModelBlessing`` with ``blessed == 1`` for the model name in
  the same pipeline, then the Model its Evaluator took as input ``model``; never the
  candidate itself (a run whose push failed after its model was blessed would otherwise
  be compared with its own model when it runs again), and never a model whose files are
  not all in the store (see ``record.content_complete``).

With an alias (``model_resolver``'s ``baseline_alias``, e.g. ``production``), the baseline is
the Model behind the version that alias names (see :mod:`kubetfx.lineage.aliases`); while the
alias is not assigned yet, the rules above apply, and the detail says so.

Used by the ``model_resolver`` component; an ordinary task, because the open-source KFP
backend rejects TFX's resolver nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_metadata import metadata_store as ms
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import BLESSING, PUSHED_MODEL
from kubetfx.lineage.record import PIPELINE_CONTEXT, content_complete, props, quoted, truthy
from kubetfx.lineage.store import Store

_PAGE = 50


@dataclass
class Baseline:
    """A baseline model and how it was chosen."""

    model_id: int
    model_uri: str
    source: str  # "served", "blessed" or "alias"
    record_id: int  # the PushedModel or ModelBlessing artifact it was found through
    detail: str
    destination: str = ""  # the served version's folder, for a served model


def _candidates(store: Store, kind: str, model_name: str, pipeline_name: str = "") -> list[pb.Artifact]:
    query = f"type = {quoted(kind)} AND custom_properties.model_name.string_value = {quoted(model_name)}"
    if pipeline_name:
        query += (
            f" AND contexts_p.type = {quoted(PIPELINE_CONTEXT)} AND contexts_p.name = {quoted(pipeline_name)}"
        )
    options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False, limit=_PAGE)
    return list(store.call(store.mlmd.get_artifacts, list_options=options))


def _flag(artifact: pb.Artifact, name: str) -> bool:
    return truthy(props(artifact).get(name))


def model_behind(store: Store, artifact_id: int) -> pb.Artifact | None:
    """The LIVE Model that the execution which produced ``artifact_id`` read as ``model``."""
    events = store.call(store.mlmd.get_events_by_artifact_ids, [artifact_id])
    producers = [e.execution_id for e in events if e.type == pb.Event.OUTPUT]
    if not producers:
        return None
    for event in store.call(store.mlmd.get_events_by_execution_ids, producers):
        if event.type == pb.Event.INPUT and event.path.steps and event.path.steps[0].key == "model":
            [model] = store.call(store.mlmd.get_artifacts_by_id, [event.artifact_id])
            if model.state == pb.Artifact.LIVE:
                return model
    return None


def served_model(store: Store, model_name: str) -> Baseline | None:
    """The model being served under ``model_name``: the latest push, rollbacks included,
    passing over canaries still in progress or rolled back."""
    from kubetfx.lineage.aliases import canary_state

    for pushed in _candidates(store, PUSHED_MODEL, model_name):
        if not _flag(pushed, "pushed"):
            continue
        version = props(pushed).get("version")
        if isinstance(version, int | float) and canary_state(store, model_name, int(version))[0] in (
            "in_progress",
            "rolled_back",
        ):
            continue
        model = model_behind(store, pushed.id)
        if model is not None:
            info = props(pushed)
            how = "rollback" if _flag(pushed, "rollback") else "push"
            return Baseline(
                model.id,
                model.uri,
                "served",
                pushed.id,
                f"served: version {info.get('version')} at {info.get('destination')} ({how})",
                str(info.get("destination") or ""),
            )
    return None


def aliased_model(store: Store, model_name: str, alias: str) -> Baseline | None:
    """The model behind the version ``alias`` names now; None while it names none."""
    from kubetfx.lineage.aliases import aliases

    version = aliases(store, model_name).get(alias)
    if version is None:
        return None
    for pushed in _candidates(store, PUSHED_MODEL, model_name):
        info = props(pushed)
        if not _flag(pushed, "pushed") or str(info.get("version")) != str(version):
            continue
        model = model_behind(store, pushed.id)
        if model is not None:
            return Baseline(
                model.id,
                model.uri,
                "alias",
                pushed.id,
                f"alias {alias}: version {version} at {info.get('destination')}",
                str(info.get("destination") or ""),
            )
    return None


def resolve_baseline(
    store: Store, model_name: str, pipeline_name: str, candidate_id: int = 0, alias: str = ""
) -> Baseline | None:
    """The baseline for ``model_name`` (see the module docstring), or None.

    ``candidate_id``: the Model artifact being evaluated, never its own blessed baseline.
    ``alias``: the version this alias names, when it names one.
    """
    if alias:
        aliased = aliased_model(store, model_name, alias)
        if aliased is not None:
            return aliased
        fallback = resolve_baseline(store, model_name, pipeline_name, candidate_id)
        if fallback is not None:
            fallback.detail = f"alias {alias} not assigned yet; {fallback.detail}"
        return fallback
    served = served_model(store, model_name)
    if served is not None:
        return served
    for blessing in _candidates(store, BLESSING, model_name, pipeline_name):
        if not _flag(blessing, "blessed"):
            continue
        model = model_behind(store, blessing.id)
        if model is not None and model.id != candidate_id and content_complete(model):
            return Baseline(
                model.id, model.uri, "blessed", blessing.id, "latest blessed model (nothing pushed yet)"
            )
    return None
