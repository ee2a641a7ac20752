"""Rollouts in lineage: one ``kubetfx.Rollout`` execution per canary rollout of a model.

The execution lives in the ``kubetfx.ModelName`` context of the model (the context its
version aliases are kept in), is written when the canary starts and rewritten after every
decision, so a rollout that dies half-way is still on record as ``in_progress`` with the
steps it took. Properties: ``model_name``, ``canary_version`` and ``stable_version``
(ints), ``state`` (``in_progress`` | ``promoted`` | ``rolled_back``), ``reason``,
``steps`` (JSON text: a list of objects with ``percent``, ``started_at``, ``decided_at``
(epoch seconds), ``decision`` (``hold`` | ``promote`` | ``rollback``),
``canary_error_rate``, ``stable_error_rate``, ``canary_p95_ms``, ``stable_p95_ms``,
``canary_requests``, ``stable_requests``, ``reason``), ``started_at``, ``finished_at``.
Its INPUT events name the canary's and the stable version's PushedModel artifacts (keys
``canary`` and ``stable``) where lineage holds their pushes, so the provenance graph of a
push shows the rollouts it took part in.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.aliases import MODEL_CONTEXT, ROLLOUT_EXECUTION, model_context
from kubetfx.lineage.record import _event, props, to_value
from kubetfx.lineage.store import Store
from kubetfx.pushing import check_model_name

STATES = ("in_progress", "promoted", "rolled_back")
DECISIONS = ("hold", "promote", "rollback")


@dataclass
class Step:
    """One analysis of the canary at one traffic share."""

    percent: int
    started_at: float
    decided_at: float
    decision: str  # hold | promote | rollback
    canary_error_rate: float | None = None
    stable_error_rate: float | None = None
    canary_p95_ms: float | None = None
    stable_p95_ms: float | None = None
    canary_requests: float | None = None
    stable_requests: float | None = None
    reason: str = ""


@dataclass
class Rollout:
    """A rollout as lineage holds it."""

    model_name: str
    canary_version: int
    stable_version: int
    state: str = "in_progress"
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    execution_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pushed_artifact(store: Store, model_name: str, version: int) -> pb.Artifact | None:
    from kubetfx.lineage.rollback import find_push

    record = find_push(store, model_name, version)
    return record.pushed if record is not None else None


def save(store: Store, rollout: Rollout) -> int:
    """Write ``rollout`` (create it the first time, rewrite it after); returns its id."""
    check_model_name(rollout.model_name)
    store.ensure_own()
    if rollout.state not in STATES:
        raise ValueError(f"rollout state must be one of {STATES}, not {rollout.state!r}")
    for step in rollout.steps:
        if step.decision not in DECISIONS:
            raise ValueError(f"step decision must be one of {DECISIONS}, not {step.decision!r}")
    execution = pb.Execution(type_id=store.type_id("execution", ROLLOUT_EXECUTION))
    if rollout.execution_id is not None:
        execution.id = rollout.execution_id
    execution.last_known_state = (
        pb.Execution.RUNNING if rollout.state == "in_progress" else pb.Execution.COMPLETE
    )
    facts: dict[str, Any] = {
        "display_name": f"rollout {rollout.model_name} {rollout.stable_version} -> {rollout.canary_version}",
        "model_name": rollout.model_name,
        "canary_version": int(rollout.canary_version),
        "stable_version": int(rollout.stable_version),
        "state": rollout.state,
        "reason": rollout.reason,
        "steps": json.dumps([asdict(s) for s in rollout.steps]),
        "started_at": float(rollout.started_at),
        "finished_at": float(rollout.finished_at),
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    links: list[tuple[pb.Artifact, pb.Event]] = []
    if rollout.execution_id is None:
        for key, version in (("canary", rollout.canary_version), ("stable", rollout.stable_version)):
            artifact = _pushed_artifact(store, rollout.model_name, version)
            if artifact is not None and not any(a.id == artifact.id for a, _ in links):
                links.append((artifact, _event(pb.Event.INPUT, key)))
    execution_id, _, _ = store.call(
        store.mlmd.put_execution, execution, links, [model_context(store, rollout.model_name)]
    )
    rollout.execution_id = execution_id
    return int(execution_id)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def from_execution(execution: pb.Execution) -> Rollout:
    """A ``kubetfx.Rollout`` execution read back."""
    p = props(execution)
    raw = p.get("steps") or "[]"
    try:
        steps_data = json.loads(raw) if isinstance(raw, str) else list(raw)
    except json.JSONDecodeError:
        steps_data = []
    known = set(Step.__dataclass_fields__)
    steps = [Step(**{k: v for k, v in s.items() if k in known}) for s in steps_data if isinstance(s, dict)]
    return Rollout(
        model_name=str(p.get("model_name", "")),
        canary_version=int(p.get("canary_version") or 0),
        stable_version=int(p.get("stable_version") or 0),
        state=str(p.get("state", "")),
        reason=str(p.get("reason", "")),
        steps=steps,
        started_at=_number(p.get("started_at")) or 0.0,
        finished_at=_number(p.get("finished_at")) or 0.0,
        execution_id=execution.id,
    )


def rollouts_of(store: Store, model_name: str, version: int | None = None) -> list[Rollout]:
    """The rollouts of ``model_name`` (those with ``version`` as canary or stable), newest first."""
    check_model_name(model_name)
    context = store.call(store.mlmd.get_context_by_type_and_name, MODEL_CONTEXT, model_name)
    if context is None:
        return []
    type_id = store.type_id("execution", ROLLOUT_EXECUTION)
    executions = [
        e for e in store.call(store.mlmd.get_executions_by_context, context.id) if e.type_id == type_id
    ]
    found = [from_execution(e) for e in sorted(executions, key=lambda e: -e.id)]
    if version is not None:
        found = [r for r in found if version in (r.canary_version, r.stable_version)]
    return found


def now() -> float:
    """Epoch seconds (the clock decisions are stamped with)."""
    return time.time()
