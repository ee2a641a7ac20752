"""Version aliases on a real ML Metadata store: assignment, the latest wins, the history of
who moved an alias when, resolution of ``NAME:ALIAS``, and the versions refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage import aliases
from kubetfx.lineage.graph import MLMDLineage
from kubetfx.lineage.record import props, to_value
from kubetfx.lineage.store import Store


def test_the_latest_assignment_wins_and_the_history_is_kept(store: Store, push: Callable[..., int]) -> None:
    push(1)
    push(2)
    push(1, model_name="other")
    assert aliases.aliases(store, "penguins") == {}
    assert aliases.history(store, "penguins") == []

    aliases.assign_alias(store, "penguins", 1, "production", reason="first release", actor="alice")
    aliases.assign_alias(store, "penguins", 2, "candidate", actor="ci")
    assert aliases.aliases(store, "penguins") == {"candidate": 2, "production": 1}
    aliases.assign_alias(store, "penguins", 2, "production", reason="canary held", actor="bob")
    aliases.assign_alias(store, "other", 1, "production")

    assert aliases.aliases(store, "penguins") == {"candidate": 2, "production": 2}
    assert aliases.aliases_of(store, "penguins", 2) == ["candidate", "production"]
    assert aliases.aliases_of(store, "penguins", 1) == []
    moves = aliases.history(store, "penguins", "production")
    assert [(m.version, m.actor, m.reason) for m in moves] == [
        (2, "bob", "canary held"),
        (1, "alice", "first release"),
    ]
    assert moves[0].assigned_at >= moves[1].assigned_at > 0
    assert len(aliases.history(store, "penguins")) == 3
    assert aliases.aliases(store, "other") == {"production": 1}


def test_an_assignment_is_an_execution_in_the_models_context_reading_the_push(
    store: Store, push: Callable[..., int]
) -> None:
    push(3)
    aliases.assign_alias(store, "penguins", 3, "production", reason="r", actor="a")
    [execution] = store.call(store.mlmd.get_executions_by_type, aliases.ALIAS_EXECUTION)
    p = props(execution)
    assert {k: p[k] for k in ("model_name", "alias", "version", "reason", "actor")} == {
        "model_name": "penguins",
        "alias": "production",
        "version": 3,
        "reason": "r",
        "actor": "a",
    }
    [context] = store.call(store.mlmd.get_contexts_by_execution, execution.id)
    assert context.name == "penguins"
    [event] = store.call(store.mlmd.get_events_by_execution_ids, [execution.id])
    [pushed] = store.call(store.mlmd.get_artifacts_by_id, [event.artifact_id])
    assert event.type == pb.Event.INPUT and props(pushed)["version"] == 3


def test_the_actor_defaults_to_the_user(
    store: Store, push: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    push(1)
    monkeypatch.setenv("USER", "carol")
    aliases.assign_alias(store, "penguins", 1, "production")
    assert aliases.history(store, "penguins")[0].actor == "carol"


def test_refused_versions_and_names(store: Store, push: Callable[..., int]) -> None:
    push(1)
    with pytest.raises(aliases.AliasError, match=r"version 7 .* never pushed .*pushed versions: 1"):
        aliases.assign_alias(store, "penguins", 7, "production")
    with pytest.raises(aliases.AliasError, match="pushed versions: none"):
        aliases.assign_alias(store, "nobody", 1, "production")
    for bad in ("3", "Production", "prod uction", "", "-x", "a" * 64):
        with pytest.raises(aliases.AliasError, match="not valid"):
            aliases.assign_alias(store, "penguins", 1, bad)
    assert aliases.history(store, "penguins") == []


def _rollout(store: Store, canary: int, stable: int, state: str) -> None:
    """A ``kubetfx.Rollout`` execution as the stepped canary records it."""
    execution = pb.Execution(type_id=store.type_id("execution", aliases.ROLLOUT_EXECUTION))
    now = time.time()
    step = {"percent": 5, "started_at": now, "decided_at": now, "decision": "rollback", "reason": "errors 5%"}
    facts = {
        "model_name": "penguins",
        "canary_version": canary,
        "stable_version": stable,
        "state": state,
        "reason": "canary error rate 0.05 > stable 0.0",
        "steps": json.dumps([step]),
        "started_at": now,
        "finished_at": now,
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    store.call(store.mlmd.put_execution, execution, [], [])


def test_a_rolled_back_version_needs_force(store: Store, push: Callable[..., int]) -> None:
    push(1)
    push(2)
    push(3)
    _rollout(store, canary=2, stable=1, state="rolled_back")
    _rollout(store, canary=3, stable=1, state="promoted")
    with pytest.raises(aliases.AliasError, match=r"rolled back by its canary analysis \(canary error rate"):
        aliases.assign_alias(store, "penguins", 2, "production")
    aliases.assign_alias(store, "penguins", 3, "production")
    aliases.assign_alias(store, "penguins", 2, "debugging", force=True, reason="reproduce the errors")
    assert aliases.aliases(store, "penguins") == {"debugging": 2, "production": 3}


def test_resolve_version_reads_numbers_and_aliases(store: Store, push: Callable[..., int]) -> None:
    push(1)
    push(2)
    aliases.assign_alias(store, "penguins", 1, "production")
    assert aliases.resolve_version(store, "penguins", "production") == 1
    assert aliases.resolve_version(store, "penguins", "2") == 2
    with pytest.raises(aliases.AliasError, match=r"'staging' is neither .* production -> 1"):
        aliases.resolve_version(store, "penguins", "staging")


def test_lineage_refs_take_an_alias_where_a_version_goes(store: Store, push: Callable[..., int]) -> None:
    push(1)
    push(2)
    aliases.assign_alias(store, "penguins", 1, "production")
    source = MLMDLineage(store)
    node = source.resolve("penguins:production")
    assert node.properties["version"] == 1
    assert source.resolve("penguins:2").properties["version"] == 2
    with pytest.raises(aliases.AliasError, match="neither a version number nor an alias"):
        source.resolve("penguins:staging")


def test_the_audit_shows_the_aliases_a_version_holds_and_held(store: Store, push: Callable[..., int]) -> None:
    from kubetfx.lineage import audit

    push(1)
    push(2)
    aliases.assign_alias(store, "penguins", 1, "production", reason="first release", actor="alice")
    aliases.assign_alias(store, "penguins", 2, "candidate", actor="ci")
    aliases.assign_alias(store, "penguins", 2, "production", reason="canary held", actor="bob")

    first = audit.build(MLMDLineage(store), "penguins:1")
    assert first.aliases["held"] == []
    [moved] = first.aliases["history"]
    assert (moved["alias"], moved["actor"], moved["moved_to"], moved["moved_by"]) == (
        "production",
        "alice",
        2,
        "bob",
    )
    text = audit.to_markdown(first)
    assert "## Aliases" in text and "| held now | none |" in text
    assert "(first release); moved to version 2 at" in text and "by bob (canary held)" in text

    current = audit.build(MLMDLineage(store), "penguins:production")
    assert current.version == 2 and current.aliases["held"] == ["candidate", "production"]
    assert "| held now | candidate, production |" in audit.to_markdown(current)
    assert "<h2>Aliases</h2>" in audit.to_html(current)
