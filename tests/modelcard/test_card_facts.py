"""Model cards from lineage written as the tasks write it (a real SQLite ML Metadata store,
no model files): the serving check read from the PushedModel, rollouts and aliases, the
schema check of every card, and nothing written when a card is not valid."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage import aliases
from kubetfx.lineage.graph import MLMDLineage
from kubetfx.lineage.record import to_value
from kubetfx.lineage.store import Store
from kubetfx.modelcard import card as cards
from kubetfx.modelcard.html import render

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/model_card/model_card.schema.json").read_text()
)
KSERVE_CHECK = {
    "serving_server": "kserve 0.15.2",
    "serving_protocol": "v2",
    "load_requests": 2000,
    "load_concurrency": 8,
    "load_errors": 0,
    "latency_p50_ms": 4.2,
    "latency_p95_ms": 9.5,
    "latency_p99_ms": 14.0,
    "latency_slo_p95_ms": 200.0,
    "predictions_checked": 111,
    "predictions_match": 1,
}


def _valid(document: dict) -> None:
    """The toolkit's schema, applied here without kubetfx's own validate()."""
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    assert not [e.message for e in validator.iter_errors(document)]


def _metrics(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (m["type"], m.get("slice", "")): m for m in document["quantitative_analysis"]["performance_metrics"]
    }


def test_a_check_in_a_model_server_is_on_the_card(store: Store, push: Callable[..., int]) -> None:
    push(1, **KSERVE_CHECK)
    card = cards.build(MLMDLineage(store), "penguins:1")
    assert card.serving["checked"] and card.serving["slo_met"] is True
    assert card.serving["summary"] == (
        "checked in kserve 0.15.2 over V2 REST: 2000 requests at concurrency 8, 0 errors; p95 9.5 ms "
        "(SLO 200 ms: met); predictions equal the in-process signature's"
    )
    document = cards.to_json(card)
    _valid(document)
    metrics = _metrics(document)
    assert metrics[("latency p95 ms", "serving check (kserve 0.15.2)")]["value"] == "9.5"
    assert metrics[("latency p99 ms", "serving check (kserve 0.15.2)")]["value"] == "14"
    limitations = [x["description"] for x in document["considerations"]["limitations"]]
    assert not any("model server" in x or "SLO" in x for x in limitations)
    # No evaluation in this lineage: nothing to compare with, and the card says what is missing.
    assert document["model_details"]["version"] == {
        "name": "1",
        "date": "2026-03-01",
        "diff": "compared with baseline: none",
    }
    assert "lineage gap: no evaluation of this model is in lineage" in limitations
    assert "graphics" not in document["quantitative_analysis"]  # no fairness slices to draw
    page = render(card)
    assert "serving check: kserve 0.15.2" in page and "not checked in a model server" not in page


def test_a_missed_slo_and_an_in_process_check_are_limitations(store: Store, push: Callable[..., int]) -> None:
    push(1, **{**KSERVE_CHECK, "latency_p95_ms": 350.0})
    push(2, latency_p50_ms=1.5, latency_p95_ms=3.0)  # what the in-process check records
    slow = cards.to_json(cards.build(MLMDLineage(store), "penguins:1"))
    _valid(slow)
    assert any("p95 latency over its SLO" in x["description"] for x in slow["considerations"]["limitations"])
    local = cards.build(MLMDLineage(store), "penguins:2")
    assert not local.serving["checked"]
    assert local.serving["summary"] == "not checked in a model server (in-process signature check: p95 3 ms)"
    document = cards.to_json(local)
    _valid(document)
    assert (
        "serving: not checked in a model server"
        in document["considerations"]["limitations"][-1]["description"]
    )
    assert "not checked in a model server" in render(local)


def _rollout(store: Store, canary: int, stable: int, state: str, steps: list[dict]) -> int:
    """A ``kubetfx.Rollout`` execution as the stepped canary records it."""
    execution = pb.Execution(type_id=store.type_id("execution", cards.ROLLOUT_EXECUTION))
    now = time.time()
    facts = {
        "model_name": "penguins",
        "canary_version": canary,
        "stable_version": stable,
        "state": state,
        "reason": "canary error rate 0.05 over stable 0 + 0.01"
        if state == "rolled_back"
        else "all steps held",
        "steps": json.dumps(steps),
        "started_at": now - 120,
        "finished_at": now,
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    [execution_id] = store.call(store.mlmd.put_executions, [execution])
    return int(execution_id)


def _step(percent: int, decision: str, canary_errors: float, canary_p95: float) -> dict:
    now = time.time()
    return {
        "percent": percent,
        "started_at": now - 60,
        "decided_at": now,
        "decision": decision,
        "canary_error_rate": canary_errors,
        "stable_error_rate": 0.0,
        "canary_p95_ms": canary_p95,
        "stable_p95_ms": 12.0,
        "reason": f"step {percent}",
    }


def test_a_card_with_rollouts_and_aliases(store: Store, push: Callable[..., int]) -> None:
    push(1, **KSERVE_CHECK)
    push(2, **KSERVE_CHECK)
    push(3, **KSERVE_CHECK)
    aliases.assign_alias(store, "penguins", 1, "production", actor="alice", reason="first release")
    promoted = _rollout(store, 2, 1, "promoted", [_step(p, "promote", 0.0, 13.0) for p in (5, 25, 50, 100)])
    aliases.assign_alias(store, "penguins", 2, "production", actor="rollout", reason="canary promoted")
    aliases.assign_alias(store, "penguins", 3, "candidate", actor="rollout", reason="canary started")
    rolled = _rollout(
        store, 3, 2, "rolled_back", [_step(5, "hold", 0.0, 13.0), _step(25, "rollback", 0.05, 14.0)]
    )

    card = cards.build(MLMDLineage(store), "penguins:production")
    assert card.record.version == 2
    assert [(r["execution"], r["role"], r["state"]) for r in card.rollouts] == [
        (promoted, "canary", "promoted"),
        (rolled, "stable", "rolled_back"),
    ]
    document = cards.to_json(card)
    _valid(document)
    metrics = _metrics(document)
    assert metrics[("canary error rate", f"rollout {rolled} step 25%")]["value"] == "0.05"
    assert metrics[("canary p95 ms", f"rollout {promoted} step 100%")]["value"] == "13"
    text = document["model_details"]["documentation"]
    assert f"rollout {promoted} (canary 2, stable 1): promoted" in text
    assert f"rollout {rolled} (canary 3, stable 2): rolled_back - canary error rate 0.05" in text
    assert "alias held now: production" in text and "alias production: since" in text
    assert [p["version"] for p in card.pushes] == [3, 2, 1]
    page = render(card)
    for shown in (
        "rollout: promoted",
        "production",
        "rolled_back",
        "canary traffic",
        "Versions of this model",
    ):
        assert shown in page, shown

    canary = cards.build(MLMDLineage(store), "penguins:candidate")
    assert [(r["role"], r["state"]) for r in canary.rollouts] == [("canary", "rolled_back")]
    assert "rollout: rolled_back" in render(canary)
    _valid(cards.to_json(canary))


def test_validate_names_what_is_wrong_and_write_writes_nothing(
    store: Store, push: Callable[..., int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {
        "schema_version": "0.0.2",
        "quantitative_analysis": {"performance_metrics": [{"type": "x", "value": 1}]},
    }
    with pytest.raises(
        cards.ModelCardError, match=r"quantitative_analysis/performance_metrics/0/value: 1 is not"
    ):
        cards.validate(bad)
    with pytest.raises(
        cards.ModelCardError, match=r"\(top\): Additional properties are not allowed \('extra'"
    ):
        cards.validate({"extra": 1})
    with pytest.raises(cards.ModelCardError, match="model_details/version/date: 'yesterday' is not a 'date'"):
        cards.validate({"model_details": {"version": {"date": "yesterday"}}})

    push(1)
    card = cards.build(MLMDLineage(store), "penguins:1")
    monkeypatch.setattr(cards, "to_json", lambda _card: bad)
    out = tmp_path / "out"
    with pytest.raises(cards.ModelCardError):
        cards.write(card, out / cards.JSON_FILE, out / cards.HTML_FILE)
    assert not out.exists()


def test_the_component_without_lineage_writes_a_valid_card_that_says_so(tmp_path: Path) -> None:
    from kubetfx.components.model_card import executor

    from kubetfx.artifacts.kinds import PUSHED_MODEL, TYPE_KEY

    meta = {TYPE_KEY: PUSHED_MODEL, "pushed": 1, "model_name": "penguins", "version": 4}
    result = executor.run(None, str(tmp_path / "pushed"), meta, str(tmp_path))
    document = json.loads((tmp_path / "model_card.json").read_text())
    _valid(document)
    assert document == result.document and result.version == 4
    assert "lineage is off" in document["considerations"]["limitations"][0]["description"]
    assert result.metadata()["kubetfx_type"] == "kubetfx.ModelCard"
    with pytest.raises(Exception, match="is a kubetfx.Model, but a kubetfx.PushedModel is needed"):
        executor.run(None, "/x", {TYPE_KEY: "kubetfx.Model"}, str(tmp_path))


@pytest.mark.parametrize(
    ("source", "link"),
    [
        ("pkg://palmerpenguins/data/penguins.csv", "pkg://palmerpenguins/data/penguins.csv"),
        ("/data/penguins.csv", "file:///data/penguins.csv"),
        ("s3://bucket/data/*.csv", "s3://bucket/data/*.csv"),
        ("/data/span-{SPAN}/penguins.csv", ""),  # not a URI: the card leaves the link out
        ("/data/my file.csv", ""),
        ("relative/data.csv", ""),
    ],
)
def test_a_dataset_link_is_a_uri_or_nothing(source: str, link: str) -> None:
    assert cards._link(source) == link
    if link:
        _valid({"model_parameters": {"data": [{"name": "train split", "link": link}]}})


def test_a_rollout_saved_by_the_stepped_canary_is_on_the_card(store: Store, push: Callable[..., int]) -> None:
    """The card reads rollouts as :mod:`kubetfx.lineage.rollouts` writes them, steps with
    figures missing (no traffic measured yet) included."""
    from kubetfx.lineage import rollouts

    push(1, **KSERVE_CHECK)
    push(2, **KSERVE_CHECK)
    now = time.time()
    rollout = rollouts.Rollout(
        model_name="penguins",
        canary_version=2,
        stable_version=1,
        state="in_progress",
        reason="",
        steps=[
            rollouts.Step(
                percent=5,
                started_at=now - 60,
                decided_at=now,
                decision="hold",
                canary_error_rate=0.0,
                stable_error_rate=0.0,
                canary_p95_ms=15.0,
                stable_p95_ms=14.0,
                reason="within limits",
            ),
            rollouts.Step(
                percent=25, started_at=now, decided_at=now, decision="hold", reason="no traffic yet"
            ),
        ],
        started_at=now - 60,
    )
    execution_id = rollouts.save(store, rollout)
    card = cards.build(MLMDLineage(store), "penguins:2")
    [shown] = card.rollouts
    assert (shown["execution"], shown["role"], shown["state"]) == (execution_id, "canary", "in_progress")
    assert [s["percent"] for s in shown["steps"]] == [5, 25]
    document = cards.to_json(card)
    _valid(document)
    metrics = _metrics(document)
    assert metrics[("canary p95 ms", f"rollout {execution_id} step 5%")]["value"] == "15"
    assert ("canary p95 ms", f"rollout {execution_id} step 25%") not in metrics  # not measured: not shown
    assert "rollout: in_progress" in render(card)
    # While its canary is in progress, version 1 is what serves: the card of 1 shows it as stable.
    assert [r["role"] for r in cards.build(MLMDLineage(store), "penguins:1").rollouts] == ["stable"]
