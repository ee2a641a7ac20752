"""Version aliases: names such as ``production`` and ``candidate`` for pushed versions.

An alias points at one pushed version of one model. Each assignment is one ML Metadata
execution of type ``kubetfx.AliasAssignment`` (properties ``model_name``, ``alias``,
``version``, ``reason``, ``actor``, ``assigned_at``), in the ``kubetfx.ModelName`` context
named by the model, with an INPUT event ``pushed_model`` from the push record of that
version. Nothing is overwritten: the latest assignment of an alias wins, and the earlier
ones are its history (who moved ``production`` when, and why).

Rules, checked when an alias is assigned:

* The version must have a push record in lineage (a pipeline's Pusher or
  ``kubetfx rollback``): an alias names something that was published.
* A version whose latest stepped rollout (``kubetfx.Rollout``) ended ``rolled_back`` is
  refused unless ``force=True``: the canary analysis found it worse than the stable
  version, and a person who wants it anyway says so.
* An alias is lowercase letters, digits, ``-`` and ``_``, starts with a letter, and is at
  most 63 characters, so ``NAME:ALIAS`` never reads as ``NAME:VERSION``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ml_metadata import metadata_store as ms
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import KubetfxError
from kubetfx.lineage.record import _event, props, quoted, to_value
from kubetfx.lineage.store import Store

ALIAS_EXECUTION = "kubetfx.AliasAssignment"
MODEL_CONTEXT = "kubetfx.ModelName"  # one context per model name: its aliases and rollouts
ROLLOUT_EXECUTION = "kubetfx.Rollout"
PUSHED_MODEL_KEY = "pushed_model"
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
WELL_KNOWN = ("production", "candidate")


class AliasError(KubetfxError):
    """An alias cannot be assigned or resolved."""


@dataclass(frozen=True)
class AliasAssignment:
    """One recorded assignment of an alias."""

    model_name: str
    alias: str
    version: int
    reason: str
    actor: str
    assigned_at: float
    execution_id: int


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias name; else :class:`AliasError` saying why."""
    if not ALIAS_PATTERN.match(alias):
        raise AliasError(
            f"alias {alias!r} is not valid: use lowercase letters, digits, '-' and '_', starting "
            "with a letter, at most 63 characters (e.g. production, candidate)"
        )
    return alias


def model_context(store: Store, model_name: str) -> pb.Context:
    """The ``kubetfx.ModelName`` context of ``model_name``, created by whoever is first."""
    from ml_metadata import errors as mlmd_errors

    type_id = store.type_id("context", MODEL_CONTEXT)
    found = store.call(store.mlmd.get_context_by_type_and_name, MODEL_CONTEXT, model_name)
    if found is not None:
        return found
    context = pb.Context(type_id=type_id, name=model_name)
    try:
        [context.id] = store.call(store.mlmd.put_contexts, [context])
    except mlmd_errors.AlreadyExistsError:
        return store.call(store.mlmd.get_context_by_type_and_name, MODEL_CONTEXT, model_name)
    return context


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def pushed_versions(store: Store, model_name: str) -> list[int]:
    """The versions of ``model_name`` with a push record, ascending."""
    from kubetfx.lineage.rollback import pushes

    return sorted({v for a in pushes(store, model_name) if (v := _int(props(a).get("version"))) is not None})


def _push_record(store: Store, model_name: str, version: int) -> pb.Artifact | None:
    from kubetfx.lineage.rollback import pushes

    return next((a for a in pushes(store, model_name) if _int(props(a).get("version")) == version), None)


def canary_state(store: Store, model_name: str, version: int) -> tuple[str, str]:
    """(state, reason) of the latest stepped rollout with ``version`` as its canary
    (``in_progress``, ``promoted`` or ``rolled_back``); ("", "") when it was never one."""
    if not has_execution_type(store, ROLLOUT_EXECUTION):
        return "", ""
    query = (
        f"type = {quoted(ROLLOUT_EXECUTION)} AND custom_properties.model_name.string_value = "
        f"{quoted(model_name)} AND custom_properties.canary_version.int_value = {int(version)}"
    )
    options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False, limit=1)
    for execution in store.call(store.mlmd.get_executions, list_options=options):
        p = props(execution)
        return str(p.get("state") or ""), str(p.get("reason") or "")
    return "", ""


def rolled_back(store: Store, model_name: str, version: int) -> str:
    """The reason, if the latest stepped rollout of this version ended ``rolled_back``;
    "" otherwise (never rolled out, promoted, or still in progress)."""
    state, reason = canary_state(store, model_name, version)
    return (reason or "rolled back by the canary analysis") if state == "rolled_back" else ""


def has_execution_type(store: Store, name: str) -> bool:
    """Whether the store knows the execution type ``name`` (nothing of it recorded yet
    otherwise). Listed rather than asked for: a missing type is NotFound from a local store
    but Unknown through the gRPC metadata service."""
    return any(t.name == name for t in store.call(store.mlmd.get_execution_types))


def assign_alias(
    store: Store,
    model_name: str,
    version: int,
    alias: str,
    *,
    reason: str = "",
    actor: str = "",
    force: bool = False,
) -> None:
    """Point ``alias`` of ``model_name`` at ``version`` and record who did it and why.

    Args:
        store: The metadata store holding the pushes.
        model_name: The model's name, as pushed.
        version: A pushed version.
        alias: The alias (``production``, ``candidate``, or a name of your own).
        reason: Why, in the assigner's words (kept in the history).
        actor: Who; empty: the user running this (``USER``/``LOGNAME``, else the account).
        force: Also a version whose latest rollout was rolled back.

    Raises:
        AliasError: An invalid alias, a version never pushed, or a rolled-back version
            without ``force``.
    """
    from kubetfx.pushing import check_model_name

    check_model_name(model_name)
    check_alias(alias)
    pushed = _push_record(store, model_name, version)
    if pushed is None:
        known = pushed_versions(store, model_name)
        raise AliasError(
            f"version {version} of model {model_name!r} was never pushed ({store}; pushed versions: "
            f"{', '.join(map(str, known)) or 'none'}); an alias names a pushed version"
        )
    if not force:
        why = rolled_back(store, model_name, version)
        if why:
            raise AliasError(
                f"version {version} of model {model_name!r} was rolled back by its canary analysis "
                f"({why}); assign {alias!r} to it anyway with force (`kubetfx promote --force`)"
            )
    store.ensure_own()
    context = model_context(store, model_name)
    execution = pb.Execution(
        type_id=store.type_id("execution", ALIAS_EXECUTION), last_known_state=pb.Execution.COMPLETE
    )
    facts: dict[str, object] = {
        "display_name": f"alias {alias}",
        "model_name": model_name,
        "alias": alias,
        "version": int(version),
        "reason": reason,
        "actor": actor or _user(),
        "assigned_at": time.time(),
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    store.call(
        store.mlmd.put_execution, execution, [(pushed, _event(pb.Event.INPUT, PUSHED_MODEL_KEY))], [context]
    )


def _user() -> str:
    """Who runs this process: ``USER``/``LOGNAME``, else the account's name ("" if none)."""
    import getpass

    try:
        return os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    except (KeyError, OSError):  # no such variable and no passwd entry (some containers)
        return ""


def history(store: Store, model_name: str, alias: str = "") -> list[AliasAssignment]:
    """Every assignment of ``model_name``'s aliases (only ``alias``'s if given), newest first."""
    if not has_execution_type(store, ALIAS_EXECUTION):
        return []
    query = (
        f"type = {quoted(ALIAS_EXECUTION)} AND custom_properties.model_name.string_value = "
        f"{quoted(model_name)}"
    )
    if alias:
        query += f" AND custom_properties.alias.string_value = {quoted(alias)}"
    options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False)
    found = []
    for execution in store.call(store.mlmd.get_executions, list_options=options):
        p = props(execution)
        version = _int(p.get("version"))
        if version is None:
            continue
        found.append(
            AliasAssignment(
                model_name=model_name,
                alias=str(p.get("alias", "")),
                version=version,
                reason=str(p.get("reason") or ""),
                actor=str(p.get("actor") or ""),
                assigned_at=float(p.get("assigned_at") or 0.0),
                execution_id=execution.id,
            )
        )
    # Newest first by id: ids grow with every write, clocks of different writers may not.
    return sorted(found, key=lambda a: -a.execution_id)


def aliases(store: Store, model_name: str) -> dict[str, int]:
    """Each alias of ``model_name`` and the version it names now (the latest assignment)."""
    current: dict[str, int] = {}
    for assignment in history(store, model_name):
        current.setdefault(assignment.alias, assignment.version)
    return dict(sorted(current.items()))


def aliases_of(store: Store, model_name: str, version: int) -> list[str]:
    """The aliases that name ``version`` of ``model_name`` now, sorted."""
    return [a for a, v in aliases(store, model_name).items() if v == version]


def resolve_version(store: Store, model_name: str, ref: str) -> int:
    """A version number from ``ref``: a number as is, an alias as the version it names now.

    Raises:
        AliasError: ``ref`` is neither a number nor an assigned alias of ``model_name``.
    """
    text = ref.strip()
    if text.isdigit():
        return int(text)
    current = aliases(store, model_name)
    if text in current:
        return current[text]
    known = ", ".join(f"{a} -> {v}" for a, v in current.items()) or "none"
    raise AliasError(
        f"{text!r} is neither a version number nor an alias of model {model_name!r} "
        f"(its aliases: {known}); `kubetfx promote {model_name}:VERSION --alias {text or 'NAME'}` assigns one"
    )


def version_story(store: Store, model_name: str, version: int) -> dict[str, Any]:
    """The aliases ``version`` holds now and each time one was moved onto it or away from
    it, oldest first: ``{"held": [...], "history": [{alias, assigned_at, actor, reason,
    moved_away_at, moved_to, moved_by, moved_reason}]}`` (the ``moved_*`` keys are empty
    while the alias still names this version)."""
    moves = list(reversed(history(store, model_name)))  # oldest first
    story: list[dict[str, Any]] = []
    for i, move in enumerate(moves):
        if move.version != version:
            continue
        later = next((m for m in moves[i + 1 :] if m.alias == move.alias), None)
        if later is not None and later.version == version:
            continue  # assigned again to the same version: the later row tells it
        story.append(
            {
                "alias": move.alias,
                "assigned_at": move.assigned_at,
                "actor": move.actor,
                "reason": move.reason,
                "moved_away_at": later.assigned_at if later else None,
                "moved_to": later.version if later else None,
                "moved_by": later.actor if later else "",
                "moved_reason": later.reason if later else "",
            }
        )
    return {"held": aliases_of(store, model_name, version), "history": story}
