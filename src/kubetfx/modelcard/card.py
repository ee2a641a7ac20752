"""A model card's facts, read from lineage, and their Model Card Toolkit JSON.

Where each fact goes in the toolkit's schema (v0.0.2), which allows no field of its own:

* ``model_details``: name; overview (one line: pipeline, data, blessing, push); version
  (number, push date, ``diff``: the comparison with the baseline); ``path`` (where the
  version was published); ``documentation`` (the whole story in prose: provenance,
  validation, blessing, serving check, pushes, rollouts, aliases).
* ``model_parameters``: the architecture, model code, hyper-parameters and training run;
  one dataset per split (rows, span, fingerprint, source); the input features (from the
  model and the schema) and the output (the label's classes).
* ``quantitative_analysis.performance_metrics``: every metric of every slice; the
  fairness metric of each fairness slice with its 95% interval; each fairness gap with
  its interval; the training metrics; the serving check's latencies and errors; each
  rollout step's error rates and p95 latencies. Values are strings, as the schema says.
* ``considerations``: ``tradeoffs``: every gate the Evaluator applied, passed or failed;
  ``ethical_considerations``: each fairness gap and how it was gated; ``limitations``:
  what lineage lacks, slices too small to gate, a serving check not made in a model
  server, data validation findings, trainer warnings.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetfx.artifacts.kinds import PUSHED_MODEL
from kubetfx.errors import KubetfxError
from kubetfx.lineage.audit import AuditRecord
from kubetfx.lineage.graph import LineageSource, Node, stable
from kubetfx.lineage.record import from_json_text
from kubetfx.settings import redact

SCHEMA_VERSION = "0.0.2"
ROLLOUT_EXECUTION = "kubetfx.Rollout"
JSON_FILE = "model_card.json"
HTML_FILE = "model_card.html"
# What the Pusher's serving check records on the PushedModel (in a real model server).
SERVING_KEYS = (
    "serving_server",
    "serving_protocol",
    "load_requests",
    "load_concurrency",
    "load_errors",
    "load_seconds",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_slo_p95_ms",
    "predictions_checked",
    "predictions_match",
    "predictions_max_difference",
)
NOT_IN_SERVER = "not checked in a model server"


class ModelCardError(KubetfxError):
    """A model card cannot be built, or is not valid against the toolkit's schema."""


@dataclass
class ModelCard:
    """Everything a card shows, as plain values (also the notebook API)."""

    record: AuditRecord
    pushed: dict[str, Any]  # the PushedModel's recorded facts
    model: dict[str, Any]  # the Model's recorded facts (training)
    examples: dict[str, Any]  # the Examples' recorded facts (data)
    schema: dict[str, Any]  # the Schema's recorded facts (features)
    evaluation: dict[str, Any]  # the Evaluation's recorded facts (slices, fairness, checks)
    serving: dict[str, Any]  # the serving check, normalised (see serving_check)
    fairness: list[dict[str, Any]]  # per fairness feature: gap, interval, slices, verdict
    pushes: list[dict[str, Any]]  # the model's versions, newest first
    rollouts: list[dict[str, Any]]  # stepped rollouts this version took part in, oldest first
    generated_at: float = field(default_factory=time.time)

    @property
    def title(self) -> str:
        version = f"version {self.record.version}" if self.record.version else "(not pushed)"
        return f"Model card: {self.record.model_name} {version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- reading lineage


def _node(source: LineageSource, artifact_id: Any) -> Node | None:
    if not artifact_id:
        return None
    try:
        return source.resolve(str(int(artifact_id)))
    except (KubetfxError, ValueError):
        return None


def _plain(properties: dict[str, Any]) -> dict[str, Any]:
    """Recorded facts as plain values: JSON text read back, numbers in a stable form."""
    shown = {k: v for k, v in sorted(properties.items()) if not k.startswith("kubetfx_")}
    return {k: stable(from_json_text(v), 12) for k, v in shown.items()}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no figure


def serving_check(pushed: dict[str, Any]) -> dict[str, Any]:
    """The serving check the Pusher recorded: ``checked`` is True only for a check in a
    real model server (``serving_server`` other than ``in-process``)."""
    found = {key: pushed.get(key) for key in SERVING_KEYS if pushed.get(key) not in (None, "")}
    server = str(found.get("serving_server", ""))
    checked = bool(server) and server != "in-process"
    p95, slo = _number(found.get("latency_p95_ms")), _number(found.get("latency_slo_p95_ms"))
    within = None if p95 is None or not slo else p95 <= slo
    match = found.get("predictions_match")
    if checked:
        summary = f"checked in {server}" + (
            f" over {str(found['serving_protocol']).upper()} REST" if found.get("serving_protocol") else ""
        )
        if found.get("load_requests"):
            summary += (
                f": {found['load_requests']} requests at concurrency {found.get('load_concurrency', '-')}, "
                f"{found.get('load_errors', 0)} errors"
            )
        if p95 is not None:
            summary += f"; p95 {p95:.4g} ms" + (
                f" (SLO {slo:.4g} ms: {'met' if within else 'MISSED'})" if slo else ""
            )
        if match is not None:
            summary += (
                f"; predictions {'equal' if int(match) == 1 else 'DIFFER from'} the in-process signature's"
            )
    else:
        summary = NOT_IN_SERVER
        if p95 is not None:
            load = f" over {found['load_requests']} requests" if found.get("load_requests") else ""
            summary += f" (in-process signature check: p95 {p95:.4g} ms{load})"
    return {"checked": checked, "summary": summary, "slo_met": within, **found}


def _fairness(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fairness feature: the gated metric's gap, its interval (as the Evaluator's check
    states it), the verdict, and each slice's value with its 95% interval."""
    checks = {str(c.get("name", "")): c for c in evaluation.get("checks") or [] if isinstance(c, dict)}
    gaps = evaluation.get("fairness_gaps") or {}
    estimates = evaluation.get("fairness_estimates") or {}
    metric = str(evaluation.get("fairness_metric") or "")
    features = sorted(
        set(gaps) | set(estimates) | {n.split(":", 1)[1] for n in checks if n.startswith("fairness:")}
    )
    found = []
    for feature in features:
        check = checks.get(f"fairness:{feature}", {})
        detail = str(check.get("detail", ""))
        interval = re.search(r"gap's ([\d.]+)%.*?interval is (-?\d+(?:\.\d+)?) to (-?\d+(?:\.\d+)?)", detail)
        slices = [
            {
                "slice": name,
                "value": e.get("value"),
                "low": e.get("low"),
                "high": e.get("high"),
                "numerator": e.get("numerator"),
                "denominator": e.get("denominator"),
                "of": e.get("of", ""),
            }
            for name, e in sorted((estimates.get(feature) or {}).items())
            if isinstance(e, dict)
        ]
        found.append(
            {
                "feature": feature,
                "metric": metric,
                "gap": gaps.get(feature),
                "gap_low": float(interval.group(2)) if interval else None,
                "gap_high": float(interval.group(3)) if interval else None,
                "gap_level": float(interval.group(1)) / 100 if interval else None,
                "passed": check.get("passed") if check else None,
                "detail": detail,
                "slices": slices,
            }
        )
    return found


def _pushes(source: LineageSource, model_name: str) -> list[dict[str, Any]]:
    rows = []
    for node in source.pushes(model_name):
        p = node.properties
        rows.append(
            {
                "version": p.get("version"),
                "pushed_at": str(p.get("pushed_at", "")),
                "how": f"rollback to version {p.get('rolled_back_to')}"
                if p.get("rollback") in (1, True)
                else "push",
                "destination": redact(str(p.get("destination", ""))),
                "artifact": node.id,
            }
        )
    return rows


def rollouts(store: Any, model_name: str, version: int) -> list[dict[str, Any]]:
    """The ``kubetfx.Rollout`` executions of ``model_name`` in which ``version`` was the
    canary or the stable version, oldest first, read through the store (properties
    ``canary_version``, ``stable_version``, ``state``, ``reason``, ``steps`` as JSON text,
    ``started_at``, ``finished_at``)."""
    from ml_metadata import metadata_store as ms

    from kubetfx.lineage.aliases import has_execution_type
    from kubetfx.lineage.record import props, quoted

    if store is None or not version:
        return []
    if not has_execution_type(store, ROLLOUT_EXECUTION):
        return []
    query = (
        f"type = {quoted(ROLLOUT_EXECUTION)}"
        f" AND custom_properties.model_name.string_value = {quoted(model_name)}"
    )
    found = store.call(store.mlmd.get_executions, list_options=ms.ListOptions(filter_query=query))
    rows = []
    for execution in sorted(found, key=lambda e: e.id):
        p = props(execution)
        canary, stable_version = _int(p.get("canary_version")), _int(p.get("stable_version"))
        if version not in (canary, stable_version):
            continue
        steps = from_json_text(p.get("steps"))
        rows.append(
            {
                "execution": execution.id,
                "role": "canary" if canary == version else "stable",
                "canary_version": canary,
                "stable_version": stable_version,
                "state": str(p.get("state", "")),
                "reason": str(p.get("reason", "")),
                "started_at": _number(p.get("started_at")),
                "finished_at": _number(p.get("finished_at")),
                "steps": [stable(s, 12) for s in steps if isinstance(s, dict)]
                if isinstance(steps, list)
                else [],
            }
        )
    return rows


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def build(source: LineageSource, ref: str) -> ModelCard:
    """The card of a pushed model ``ref`` (``MODEL_NAME:VERSION``, ``MODEL_NAME:ALIAS``, or
    the id or URI of a PushedModel or Model), from lineage alone."""
    from kubetfx.lineage import audit

    record = audit.build(source, ref)
    root = source.resolve(ref)
    if root.type != PUSHED_MODEL:
        root = next(
            (p for p in source.pushes(record.model_name) if p.properties.get("version") == record.version),
            root,
        )
    pushed = _plain(root.properties) if root.type == PUSHED_MODEL else {}
    for key in ("destination", "model_uri"):
        if key in pushed:
            pushed[key] = redact(str(pushed[key]))
    nodes = {
        "model": _node(source, record.model.get("artifact")),
        "examples": _node(source, record.data.get("artifact")),
        "schema": _node(source, record.schema.get("artifact")),
        "evaluation": _node(source, record.evaluation.get("artifact")),
    }
    facts = {name: _plain(node.properties) if node is not None else {} for name, node in nodes.items()}
    store = getattr(source, "store", None)
    return ModelCard(
        record=record,
        pushed=pushed,
        model=facts["model"],
        examples=facts["examples"],
        schema=facts["schema"],
        evaluation=facts["evaluation"],
        serving=serving_check(pushed),
        fairness=_fairness(facts["evaluation"]),
        pushes=_pushes(source, record.model_name),
        rollouts=rollouts(store, record.model_name, record.version),
    )


# ---------------------------------------------------------------------- Model Card Toolkit JSON


def _text(value: Any) -> str:
    value = stable(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def when(seconds: Any) -> str:
    """A UTC time for epoch seconds ("" when none)."""
    number = _number(seconds)
    return datetime.fromtimestamp(number, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if number else ""


def _date(pushed_at: str) -> str:
    """``YYYY-MM-DD`` of a push time (ISO 8601 or epoch seconds), "" when unknown."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})", pushed_at)
    if match:
        return match.group(1)
    number = _number(pushed_at)
    return datetime.fromtimestamp(number, tz=UTC).strftime("%Y-%m-%d") if number else ""


def _link(uri: str) -> str:
    """``uri`` as a dataset link the schema's ``uri`` format accepts (a local path as a
    ``file://`` URI); "" when it cannot be one (a ``{SPAN}`` pattern, spaces...)."""
    from kubetfx.modelcard.formats import jsonschema

    candidate = "file://" + uri if uri.startswith("/") else uri
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", candidate):
        return ""
    return candidate if jsonschema.FormatChecker().conforms(candidate, "uri") else ""


def blessing_line(card: ModelCard) -> str:
    b = card.record.blessing
    if not b:
        return "no evaluation in lineage"
    return "BLESSED by the Evaluator" if b.get("blessed") else "NOT BLESSED by the Evaluator"


def push_line(card: ModelCard) -> str:
    r = card.record
    if card.pushed.get("pushed") in (1, True):
        return f"{r.push_kind} of version {r.version} to {r.destination} at {r.pushed_at}"
    reason = card.pushed.get("reason") or "the Pusher did not publish it"
    return f"not pushed: {reason}"


def overview(card: ModelCard) -> str:
    r = card.record
    data = f"{r.data.get('source') or 'unknown data'}" + (
        f" (span {r.data['span']})" if r.data.get("span") is not None else ""
    )
    return (
        f"{r.model_name} {('version ' + str(r.version)) if r.version else ''}".strip()
        + f": trained by pipeline {r.run.get('pipeline') or '-'} (run {r.run.get('run_id') or '-'})"
        + f" on {data}; "
        + f"{blessing_line(card)}; {push_line(card)}."
    )


def deployment_lines(card: ModelCard) -> list[str]:
    """Pushes, rollouts and aliases, one line each."""
    lines = []
    for push in card.pushes[:20]:
        mark = " (this version)" if push["version"] == card.record.version else ""
        lines.append(
            f"version {push['version']}{mark}: {push['how']} at {push['pushed_at']} to {push['destination']}"
        )
    for rollout in card.rollouts:
        lines.append(
            f"rollout {rollout['execution']} (canary {rollout['canary_version']}, "
            f"stable {rollout['stable_version']}): {rollout['state']}"
            + (f" - {rollout['reason']}" if rollout["reason"] else "")
        )
        for step in rollout["steps"]:
            lines.append(
                f"  step {step.get('percent')}%: {step.get('decision')} (error rate canary "
                f"{_text(step.get('canary_error_rate'))}, stable {_text(step.get('stable_error_rate'))}; "
                f"p95 canary {_text(step.get('canary_p95_ms'))} ms, "
                f"stable {_text(step.get('stable_p95_ms'))} ms)"
                + (f" {step.get('reason')}" if step.get("reason") else "")
            )
    from kubetfx.lineage.audit import alias_rows

    if card.record.aliases:
        lines += [f"alias {k}: {_text(v)}" for k, v in alias_rows(card.record.aliases)]
    return lines


def documentation(card: ModelCard) -> str:
    r = card.record
    v = r.validation
    parts = [
        f"Provenance: pipeline {r.run.get('pipeline') or '-'}, run {r.run.get('run_id') or '-'} started "
        f"{r.run.get('started') or '-'}; trainer execution {r.trainer.get('execution')}, component code "
        f"{r.trainer.get('code_version') or '-'}; model artifact {r.model.get('artifact')} "
        f"({r.model.get('uri')}).",
        f"Data: {r.data.get('source') or '-'}, span {_text(r.data.get('span'))}, "
        f"version {_text(r.data.get('version'))}, fingerprint {r.data.get('fingerprint') or '-'}, "
        f"rows per split {_text(r.data.get('row_counts'))}.",
        f"Schema: artifact {r.schema.get('artifact')} ({r.schema.get('source') or '-'}), "
        f"{len(card.schema.get('features') or [])} features, label {card.schema.get('label_key') or '-'}.",
        "Data validation: "
        + (
            f"{v.get('verdict')} ({_text(v.get('anomaly_count'))} anomalies; "
            f"drift baseline {v.get('drift_baseline')})"
            if v
            else "not in lineage"
        )
        + ".",
        f"Blessing: {blessing_line(card)}"
        + (f" ({'; '.join(map(str, r.blessing.get('reasons', [])))})" if r.blessing.get("reasons") else "")
        + ".",
        f"Baseline: {r.baseline.get('uri') or r.baseline.get('note') or '-'}.",
        f"Serving check: {card.serving['summary']}.",
        f"Push: {push_line(card)}.",
    ]
    deployment = deployment_lines(card)
    if deployment:
        parts.append("Deployment history:\n" + "\n".join(deployment))
    parts.append(f"Built from ML Metadata lineage alone at {when(card.generated_at)}.")
    return "\n\n".join(parts)


def _metric(kind: str, value: Any, slice_name: str = "", low: Any = None, high: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": kind, "value": _text(value)}
    if slice_name:
        entry["slice"] = slice_name
    if low is not None and high is not None:
        entry["confidence_interval"] = {"lower_bound": _text(low), "upper_bound": _text(high)}
    return entry


def performance_metrics(card: ModelCard) -> list[dict[str, Any]]:
    metrics = []
    intervals = {
        (s["slice"], f["metric"]): s for f in card.fairness for s in f["slices"] if s.get("low") is not None
    }
    slices = card.record.evaluation.get("slices") or {}
    for name in sorted(slices, key=lambda n: (n.lower() != "overall", n.count(","), n)):
        for metric, value in sorted((slices[name] or {}).items()):
            est = intervals.get((name, metric))
            metrics.append(
                _metric(
                    metric,
                    value,
                    "" if name.lower() == "overall" else name,
                    est.get("low") if est else None,
                    est.get("high") if est else None,
                )
            )
    for f in card.fairness:
        if f["gap"] is not None:
            metrics.append(
                _metric(
                    f"{f['metric']} gap across slices", f["gap"], f["feature"], f["gap_low"], f["gap_high"]
                )
            )
    for name, value in sorted((card.record.model.get("metrics") or {}).items()):
        metrics.append(_metric(f"training {name}", value, "training"))
    s = card.serving
    where = "serving check" + (f" ({s.get('serving_server')})" if s.get("serving_server") else "")
    for key in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "load_errors"):
        if s.get(key) is not None:
            metrics.append(_metric(key.replace("_", " "), s[key], where))
    for rollout in card.rollouts:
        for step in rollout["steps"]:
            where = f"rollout {rollout['execution']} step {step.get('percent')}%"
            for key in ("canary_error_rate", "stable_error_rate", "canary_p95_ms", "stable_p95_ms"):
                if step.get(key) is not None:
                    metrics.append(_metric(key.replace("_", " "), step[key], where))
    return metrics


def limitations(card: ModelCard) -> list[str]:
    r = card.record
    found = [f"lineage gap: {gap}" for gap in r.gaps]
    for f in card.fairness:
        if "not gated" in f["detail"]:
            found.append(f"fairness on {f['feature']}: not gated{f['detail'].split('not gated', 1)[1]}")
    if not card.serving["checked"]:
        found.append(f"serving: {card.serving['summary']}")
    elif card.serving.get("slo_met") is False:
        found.append(f"serving: p95 latency over its SLO ({card.serving['summary']})")
    v = r.validation
    if v and v.get("verdict") != "passed":
        found.append(f"data validation {v.get('verdict')}: {_text(v.get('anomalous_features'))}")
    for key in ("drifted_features", "skewed_features", "new_features"):
        if v.get(key):
            found.append(f"data validation: {key.replace('_', ' ')} {_text(v[key])}")
    if card.evaluation.get("unlabelled_examples"):
        found.append(f"evaluation left out {card.evaluation['unlabelled_examples']} unlabelled eval examples")
    for warning in card.model.get("warnings") or []:
        found.append(f"training: {warning}")
    return found


def input_features(card: ModelCard) -> list[dict[str, str]]:
    """Each feature of the schema (else of the model) and its role: ``label``, ``feature``
    (the model reads it), ``excluded`` (left out on purpose) or ``not used``."""
    label = str(card.schema.get("label_key") or "")
    used = [str(f) for f in card.model.get("feature_keys") or []]
    excluded = {str(f) for f in card.model.get("excluded_features") or []}
    features = [str(f) for f in card.schema.get("features") or []] or used

    def role(name: str) -> str:
        if name == label:
            return "label"
        if name in excluded:
            return "excluded"
        return "feature" if not used or name in used else "not used"

    return [{"key": name, "value": role(name)} for name in features]


def to_json(card: ModelCard) -> dict[str, Any]:
    """The card in the Model Card Toolkit's JSON schema (v0.0.2)."""
    r = card.record
    version: dict[str, Any] = {"name": str(r.version) if r.version else "not pushed"}
    if _date(r.pushed_at):
        version["date"] = _date(r.pushed_at)
    baseline_checks = [
        c for c in r.blessing.get("checks", []) if "baseline" in str(c.get("name", "")).lower()
    ]
    version["diff"] = (
        "; ".join(str(c.get("detail", "")) for c in baseline_checks)
        if baseline_checks
        else f"compared with baseline: {r.baseline.get('uri') or r.baseline.get('note') or 'none'}"
    )
    details: dict[str, Any] = {
        "name": r.model_name,
        "overview": overview(card),
        "documentation": documentation(card),
        "version": version,
    }
    if r.destination:
        details["path"] = r.destination
    source_link = _link(str(r.data.get("source") or ""))
    hyper = r.trainer.get("hyperparameters") or {}
    architecture = (
        f"{r.model.get('framework') or '-'} SavedModel ({card.model.get('layout') or '-'}); model code "
        f"{r.model.get('source') or '-'}; hyper-parameters {_text(hyper)}; "
        f"{_text(card.model.get('epochs'))} epochs, {_text(card.model.get('steps'))} steps on "
        f"{r.trainer.get('device') or '-'} ({r.trainer.get('strategy') or '-'}) "
        f"in {_text(r.trainer.get('wall_seconds'))} s"
    )
    data = []
    for split, rows in sorted((r.data.get("row_counts") or {}).items()):
        dataset: dict[str, Any] = {
            "name": f"{split} split",
            "description": (
                f"{_text(rows)} rows of {r.data.get('source') or '-'} (span {_text(r.data.get('span'))}, "
                f"version {_text(r.data.get('version'))}, fingerprint {r.data.get('fingerprint') or '-'}); "
                f"examples artifact {r.data.get('artifact')}"
            ),
        }
        if source_link:
            dataset["link"] = source_link
        data.append(dataset)
    label = str(card.schema.get("label_key") or "")
    input_map = input_features(card)
    classes = card.evaluation.get("classes") or []
    parameters: dict[str, Any] = {
        "model_architecture": architecture,
        "data": data,
        "input_format": str(card.model.get("layout") or "serialized tf.Example"),
        "input_format_map": input_map,
        "output_format": f"{label or 'label'}: one of {_text(classes)}" if classes else (label or "-"),
    }
    considerations: dict[str, Any] = {
        "tradeoffs": [
            {"description": f"[{_verdict(c.get('passed'))}] {c.get('name')}: {c.get('detail')}"}
            for c in r.blessing.get("checks", [])
            if isinstance(c, dict)
        ],
        "ethical_considerations": [
            {
                "name": f"fairness on {f['feature']}: {f['metric']} gap {_text(f['gap'])}"
                + (
                    f" ({_pct(f['gap_level'])} interval {_text(f['gap_low'])} to {_text(f['gap_high'])})"
                    if f["gap_low"] is not None
                    else ""
                ),
                "mitigation_strategy": (
                    f"gated by the Evaluator ({_verdict(f['passed'])}): {f['detail'] or '-'}"
                ),
            }
            for f in card.fairness
        ],
        "limitations": [{"description": text} for text in limitations(card)],
    }
    quantitative: dict[str, Any] = {"performance_metrics": performance_metrics(card)}
    chart = fairness_chart(card)
    if chart:
        quantitative["graphics"] = {
            "description": "The fairness metric of each fairness slice, with its 95% interval.",
            "collection": [{"name": "fairness slices", "image": chart}],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": details,
        "model_parameters": parameters,
        "quantitative_analysis": quantitative,
        "considerations": {k: v for k, v in considerations.items() if v},
    }


def _verdict(passed: Any) -> str:
    return "not gated" if passed is None else "passed" if passed else "FAILED"


def _pct(level: Any) -> str:
    number = _number(level)
    return f"{number * 100:.3g}%" if number is not None else "-"


# ---------------------------------------------------------------------- validation and files


def schema() -> dict[str, Any]:
    """The Model Card Toolkit's JSON schema v0.0.2, as shipped in ``kubetfx.schemas``."""
    from importlib.resources import files

    text = files("kubetfx.schemas").joinpath("model_card", "model_card.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(document: dict[str, Any]) -> None:
    """Check a card against the toolkit's schema, formats (``uri``, ``date``) included.

    Raises:
        ModelCardError: naming each field that is not valid, by its JSON path.
    """
    try:
        from kubetfx.modelcard.formats import jsonschema
    except ImportError as err:  # pragma: no cover - jsonschema comes with the runtime install
        from kubetfx.errors import missing_runtime

        raise missing_runtime("jsonschema", err) from err
    validator_class = jsonschema.validators.validator_for(schema())
    validator = validator_class(schema(), format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:10]]
        raise ModelCardError(
            "model card is not valid against the Model Card Toolkit schema v0.0.2: " + "; ".join(lines)
        )


def write(card: ModelCard, json_path: str | Path, html_path: str | Path) -> dict[str, Any]:
    """Write ``model_card.json`` (validated first: nothing is written when it is not valid)
    and the HTML card, each through a temporary file; returns the JSON document."""
    from kubetfx.modelcard.html import render

    document = to_json(card)
    validate(document)
    for path, text in (
        (json_path, json.dumps(document, indent=1, sort_keys=True) + "\n"),
        (html_path, render(card)),
    ):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
    return document


# ---------------------------------------------------------------------- graphics


def fairness_chart(card: ModelCard) -> str:
    """The fairness metric of each fairness slice with its 95% interval, as a base64 PNG
    ("" when lineage holds no such estimates). Drawn with matplotlib's headless backend."""
    rows = [
        (f"{s['slice']}", float(s["value"]), float(s["low"]), float(s["high"]))
        for f in card.fairness
        for s in f["slices"]
        if all(_number(s.get(k)) is not None for k in ("value", "low", "high"))
    ]
    if not rows:
        return ""
    return _draw_fairness(card.fairness[0]["metric"] or "metric", tuple(rows))


@functools.lru_cache(maxsize=4)
def _draw_fairness(metric: str, rows: tuple[tuple[str, float, float, float], ...]) -> str:
    """The chart itself, drawn once for the JSON card and the HTML page together."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2), dpi=100)
    try:
        names = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        low = [r[1] - r[2] for r in rows][::-1]
        high = [r[3] - r[1] for r in rows][::-1]
        axes.errorbar(values, range(len(rows)), xerr=[low, high], fmt="o", color="#0969da", capsize=3)
        axes.set_yticks(range(len(rows)), names)
        axes.set_xlabel(f"{metric} (95% interval)")
        axes.set_title(f"{metric} per fairness slice")
        axes.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
