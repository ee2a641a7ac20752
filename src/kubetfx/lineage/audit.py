"""The record of a pushed model, for a reviewer: ``kubetfx audit REF --format md|html``.

Built only from lineage (a :class:`~kubetfx.lineage.graph.LineageSource`): the push, the
model behind it, the run and trainer execution that made it (hyper-parameters, code
version, device), the data (source, span, fingerprint, rows), the schema, the data
validation, the evaluation per slice with the fairness gaps, the blessing decision and its
reasons, and the baseline it was compared with. No artifact file is read, so it works on a
cluster's store from a laptop. Secrets never reach it: URIs and values pass through
:func:`kubetfx.settings.redact`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubetfx.artifacts.kinds import BLESSING, EVALUATION, PUSHED_MODEL
from kubetfx.errors import KubetfxError
from kubetfx.lineage.graph import Graph, LineageSource, Node
from kubetfx.lineage.record import from_json_text
from kubetfx.settings import redact


@dataclass
class AuditRecord:
    """Everything the audit shows, as plain values (also the notebook API)."""

    model_name: str
    version: int
    destination: str
    pushed_at: str
    push_kind: str  # "push" or "rollback to version N"
    model: dict[str, Any]
    run: dict[str, Any]
    trainer: dict[str, Any]
    data: dict[str, Any]
    schema: dict[str, Any]
    validation: dict[str, Any]
    evaluation: dict[str, Any]
    blessing: dict[str, Any]
    baseline: dict[str, Any]
    serving_check: dict[str, Any]
    gaps: list[str] = field(default_factory=list)  # what lineage did not hold
    rollouts: list[dict[str, Any]] = field(default_factory=list)  # canary rollouts of this version
    aliases: dict[str, Any] = field(default_factory=dict)  # held now, and their history

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if seconds else ""


def _producer(graph: Graph, key: str) -> Node | None:
    found = [n for _, n in graph.parents(key) if n.kind == "execution"]
    return found[0] if found else None


def _inputs(graph: Graph, execution_key: str) -> dict[str, Node]:
    return {e.name: n for e, n in graph.parents(execution_key)}


def _first(graph: Graph, kind_type: str) -> Node | None:
    found = [n for n in graph.nodes.values() if n.kind == "artifact" and n.type == kind_type]
    return max(found, key=lambda n: n.id) if found else None


def build(source: LineageSource, ref: str) -> AuditRecord:
    """The audit record of the pushed model ``ref`` (``MODEL_NAME:VERSION``, or the id or
    URI of a PushedModel; a Model's id or URI picks its newest push)."""
    root = source.resolve(ref)
    if root.type != PUSHED_MODEL:
        pushes = [
            p
            for p in source.pushes(str(root.properties.get("model_name", "")))
            if p.properties.get("model_uri") == root.label
        ]
        if root.type != "system.Model" or not pushes:
            raise KubetfxError(
                f"{ref!r} is a {root.type}, not a pushed model; give MODEL_NAME:VERSION"
                " (`kubetfx lineage pushes` lists them) or the id of a pushed model"
            )
        root = pushes[0]
    up = source.walk(str(root.id), "up")
    gaps: list[str] = []
    pushed = root.properties
    push_execution = _producer(up, root.key)
    push_inputs = _inputs(up, push_execution.key) if push_execution else {}
    model = push_inputs.get("model")
    if model is None:
        raise KubetfxError(f"lineage holds no model behind push {root.id}; the record is incomplete")
    rollback = pushed.get("rollback") in (1, True)
    trainer = _producer(up, model.key)
    trainer_inputs = _inputs(up, trainer.key) if trainer else {}
    examples = trainer_inputs.get("examples")
    schema = trainer_inputs.get("schema")
    if trainer is None:
        gaps.append("the trainer execution of this model is not in lineage")

    # The evaluation that blessed this model: downstream of the model (for a rollback it
    # is the original run's, not part of the rollback's own upstream).
    down = source.walk(str(model.id), "down", max_hops=2)
    evaluations = []
    for edge, execution in down.children(model.key):
        if execution.kind != "execution" or edge.name != "model":
            continue
        outputs = {e.name: n for e, n in down.children(execution.key)}
        if outputs.get("blessing") is not None and outputs["blessing"].type == BLESSING:
            evaluations.append((execution, outputs))
    blessed = [(e, o) for e, o in evaluations if o["blessing"].properties.get("blessed") in (1, True)]
    # The one whose blessing the push read; later runs re-evaluate the served model as their
    # baseline and bless it again, which is not the record of this push. A rollback read no
    # blessing: the evaluation that first blessed the model.
    gate = push_inputs.get("blessing")
    gated = [(e, o) for e, o in evaluations if gate is not None and o["blessing"].key == gate.key]
    chosen: tuple[Node, dict[str, Node]] | None
    if gated:
        chosen = gated[0]
    elif blessed:
        chosen = min(blessed, key=lambda pair: pair[0].id)
    else:
        chosen = max(evaluations, key=lambda pair: pair[0].id) if evaluations else None
    evaluation: dict[str, Any] = {}
    blessing: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    if chosen is None:
        gaps.append("no evaluation of this model is in lineage")
    else:
        execution, outputs = chosen
        ev = outputs.get("evaluation")
        ev_props = ev.properties if ev is not None and ev.type == EVALUATION else {}
        evaluation = {
            "execution": execution.id,
            "artifact": ev.id if ev is not None else None,
            "run": execution.properties.get("run_id", ""),
            "uri": redact(ev.label) if ev is not None else "",
            "eval_examples": ev_props.get("eval_examples"),
            "overall": ev_props.get("overall") or {},
            "slices": ev_props.get("slice_metrics") or {},
            "fairness_metric": ev_props.get("fairness_metric", ""),
            "fairness_gaps": ev_props.get("fairness_gaps") or {},
            "settings": {
                k: v
                for k, v in (execution.properties.get("inputs") or {}).items()
                if not k.startswith("kubetfx_") and k not in ("baseline_model_uri", "baseline_model_id")
            },
        }
        b = outputs["blessing"].properties
        blessing = {
            "blessed": b.get("blessed") in (1, True),
            "reasons": from_json_text(b.get("reasons")) or [],
            "checks": from_json_text(ev_props.get("checks")) or [],
        }
        base_id = int(b.get("baseline_model_id") or 0)
        baseline = {
            "model_id": base_id,
            "uri": redact(str(b.get("baseline_model_uri") or "")),
            "note": "" if base_id else "none: only absolute thresholds applied",
        }
    run_id = str((trainer.properties if trainer else {}).get("run_id", ""))
    validation = _validation(source, trainer_inputs, run_id)
    if not validation:
        gaps.append("no data validation of this model's training data is in lineage")
    record = AuditRecord(
        model_name=str(pushed.get("model_name", "")),
        version=int(pushed.get("version") or 0),
        destination=redact(str(pushed.get("destination", ""))),
        pushed_at=str(pushed.get("pushed_at", "")),
        push_kind=f"rollback to version {pushed.get('rolled_back_to')}" if rollback else "push",
        model={
            "artifact": model.id,
            "uri": redact(model.label),
            "framework": model.properties.get("framework", ""),
            "source": model.properties.get("model_source", ""),
            "metrics": model.properties.get("metrics") or {},
        },
        run={
            "run_id": run_id,
            "pipeline": _pipeline_of(trainer),
            "started": _when(trainer.time) if trainer else "",
        },
        trainer={
            "execution": trainer.id if trainer else None,
            "state": trainer.state if trainer else "",
            "code_version": (trainer.properties if trainer else {}).get("kubetfx_component_version", ""),
            "hyperparameters": model.properties.get("hyperparameters") or {},
            "params": {
                k: redact(str(v)) if isinstance(v, str) else v
                for k, v in ((trainer.properties if trainer else {}).get("inputs") or {}).items()
                if not k.startswith("kubetfx_")
            },
            "device": model.properties.get("device", ""),
            "strategy": model.properties.get("strategy", ""),
            "wall_seconds": model.properties.get("wall_seconds"),
            "stop_reason": model.properties.get("stop_reason", ""),
        },
        data={
            "artifact": examples.id if examples else None,
            "source": redact(str((examples.properties if examples else {}).get("input_uri", ""))),
            "span": (examples.properties if examples else {}).get("span"),
            "version": (examples.properties if examples else {}).get("version"),
            "fingerprint": (examples.properties if examples else {}).get("fingerprint", ""),
            "row_counts": from_json_text((examples.properties if examples else {}).get("row_counts")) or {},
        },
        schema={
            "artifact": schema.id if schema else None,
            "uri": redact(schema.label) if schema else "",
            "source": (schema.properties if schema else {}).get("source", ""),
        },
        validation=validation,
        evaluation=evaluation,
        blessing=blessing,
        baseline=baseline,
        serving_check={
            "latency_p50_ms": pushed.get("latency_p50_ms"),
            "latency_p95_ms": pushed.get("latency_p95_ms"),
            **{k: pushed[k] for k in SERVING_CHECK_KEYS if k in pushed},
        },
        gaps=gaps,
    )
    if examples is None:
        record.gaps.append("the training data of this model is not in lineage")
    record.rollouts = _rollouts(source, record.model_name, record.version)
    record.aliases = _aliases(source, record.model_name, record.version)
    return record


def _rollouts(source: LineageSource, model_name: str, version: int) -> list[dict[str, Any]]:
    """The canary rollouts this version took part in (as canary or stable), newest first."""
    store = getattr(source, "store", None)
    if store is None or not model_name or not version:
        return []
    from kubetfx.lineage.rollouts import rollouts_of

    return [r.to_dict() for r in rollouts_of(store, model_name, version)]


def _rollout_rows(r: AuditRecord) -> list[tuple[str, Any]]:
    """One row per rollout and one per decision it took, in the order they were taken."""
    rows: list[tuple[str, Any]] = []
    for ro in r.rollouts:
        role = "canary" if ro["canary_version"] == r.version else "stable"
        rows.append(
            (
                f"rollout {ro['stable_version']} -> {ro['canary_version']} (this version: {role})",
                f"{ro['state']}: {ro['reason']} (started {_when(ro['started_at'])}"
                + (f", finished {_when(ro['finished_at'])})" if ro["finished_at"] else ")"),
            )
        )
        for step in ro["steps"]:
            figures = (
                f"canary {_fmt(step.get('canary_error_rate'))} errors / "
                f"p95 {_fmt(step.get('canary_p95_ms'))} ms, "
                f"stable {_fmt(step.get('stable_error_rate'))} / {_fmt(step.get('stable_p95_ms'))} ms"
            )
            rows.append(
                (
                    f"  at {step['percent']}%: {step['decision']} ({_when(step['decided_at'])})",
                    f"{figures}; {step.get('reason', '')}",
                )
            )
    return rows


def _aliases(source: LineageSource, model_name: str, version: int) -> dict[str, Any]:
    """The aliases (``production``...) this version holds and their history, where the
    source is an ML Metadata store (:mod:`kubetfx.lineage.aliases`)."""
    from kubetfx.lineage.aliases import version_story

    store = getattr(source, "store", None)
    if store is None or not model_name or not version:
        return {}
    return version_story(store, model_name, version)


def alias_rows(story: dict[str, Any]) -> list[tuple[str, Any]]:
    """The aliases section's rows: what is held now, then each alias's time on this version."""
    rows: list[tuple[str, Any]] = [("held now", ", ".join(story.get("held", [])) or "none")]
    for move in story.get("history", []):
        text = f"since {_when(move['assigned_at'])} by {move['actor'] or '-'}"
        if move.get("reason"):
            text += f" ({move['reason']})"
        if move.get("moved_away_at"):
            text += f"; moved to version {move['moved_to']} at {_when(move['moved_away_at'])}"
            text += f" by {move['moved_by'] or '-'}" + (
                f" ({move['moved_reason']})" if move.get("moved_reason") else ""
            )
        rows.append((move["alias"], text))
    return rows


def _validation(source: LineageSource, trainer_inputs: dict[str, Node], run_id: str) -> dict[str, Any]:
    """The data validation of the run that trained the model, and its verdict.

    A validator is ordered before the trainer (``.after()``), not wired into it, so it is
    not upstream of the model: it is found downstream of the statistics and schema the
    trainer consumed, as the execution of that run that read them and wrote anomalies.
    """
    from kubetfx.artifacts.kinds import ANOMALIES

    found: dict[int, tuple[Node, dict[str, Node]]] = {}
    for name in ("statistics", "schema"):
        artifact = trainer_inputs.get(name)
        if artifact is None:
            continue
        down = source.walk(str(artifact.id), "down", max_hops=2)
        for _, execution in down.children(artifact.key):
            if execution.kind != "execution":
                continue
            outputs = {e.name: n for e, n in down.children(execution.key)}
            if any(n.type == ANOMALIES for n in outputs.values()):
                found[execution.id] = (execution, outputs)
    runs = [pair for pair in found.values() if pair[0].properties.get("run_id") == run_id]
    if not runs:
        return {}
    execution, outputs = max(runs, key=lambda pair: pair[0].id)
    anomalies = next((n for n in outputs.values() if n.type == ANOMALIES), None)
    a = anomalies.properties if anomalies is not None else {}
    params = execution.properties.get("outputs") or {}
    count = params.get("anomaly_count", a.get("anomaly_count"))
    valid = params.get("valid")
    if valid is None and count is not None:
        valid = int(count) == 0
    baseline = "none: no earlier statistics of this data source"
    if a.get("baseline_run"):
        span = _fmt(a.get("baseline_span"))
        baseline = f"run {a['baseline_run']} (source {redact(str(a.get('source', '')))}, span {span})"
    elif a.get("baseline_statistics"):
        baseline = redact(str(a["baseline_statistics"]))
    report = outputs.get("report")
    return {
        "execution": execution.id,
        "state": execution.state,
        "verdict": "passed" if valid else "FAILED" if valid is not None else "-",
        "anomaly_count": count,
        "anomalous_features": from_json_text(a.get("anomalous_features")) or [],
        "drifted_features": from_json_text(a.get("drifted_features")) or [],
        "skewed_features": from_json_text(a.get("skewed_features")) or [],
        "new_features": from_json_text(a.get("new_features")) or [],
        "drift_baseline": baseline,
        "report": redact(report.label) if report is not None else "",
    }


def _pipeline_of(execution: Node | None) -> str:
    if execution is None:
        return ""
    return str(execution.properties.get("pipeline_name", "") or "")


# ---------------------------------------------------------------------- rendering


def _fmt(value: Any) -> str:
    """A value as the audit shows it, the same on every call: integral numbers as ints
    (lineage keeps every number in a struct as a double), other numbers to 4 significant
    digits at any depth, mappings sorted by key."""
    from kubetfx.lineage.graph import stable

    value = stable(value)
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _sections(r: AuditRecord) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(title, rows) in reading order; shared by md and html."""
    verdict = "BLESSED" if r.blessing.get("blessed") else "NOT BLESSED" if r.blessing else "-"
    sections: list[tuple[str, list[tuple[str, Any]]]] = [
        (
            "Model in production",
            [
                ("model name", r.model_name),
                ("version", r.version),
                ("how", r.push_kind),
                ("destination", r.destination),
                ("pushed at", r.pushed_at),
                (
                    "serving check p50 / p95 ms",
                    f"{_fmt(r.serving_check.get('latency_p50_ms'))} / "
                    f"{_fmt(r.serving_check.get('latency_p95_ms'))}",
                ),
            ],
        ),
        (
            "Run",
            [
                ("pipeline", r.run.get("pipeline")),
                ("run", r.run.get("run_id")),
                ("started", r.run.get("started")),
            ],
        ),
        (
            "Training data",
            [
                ("source", r.data.get("source")),
                ("span", r.data.get("span")),
                ("version", r.data.get("version")),
                ("fingerprint", r.data.get("fingerprint")),
                ("rows per split", r.data.get("row_counts")),
                ("examples artifact", r.data.get("artifact")),
            ],
        ),
        (
            "Schema",
            [
                ("artifact", r.schema.get("artifact")),
                ("uri", r.schema.get("uri")),
                ("source", r.schema.get("source")),
            ],
        ),
        (
            "Data validation",
            [(k, _shown_state(k, r.validation[k])) for k in sorted(r.validation, key=_validation_order)]
            or [("record", "not in lineage")],
        ),
        (
            "Model and training",
            [
                ("model artifact", r.model.get("artifact")),
                ("model uri", r.model.get("uri")),
                ("model code", r.model.get("source")),
                ("component code version", r.trainer.get("code_version")),
                ("hyper-parameters", r.trainer.get("hyperparameters")),
                ("device / strategy", f"{_fmt(r.trainer.get('device'))} / {_fmt(r.trainer.get('strategy'))}"),
                ("training metrics", r.model.get("metrics")),
                ("training seconds", r.trainer.get("wall_seconds")),
                ("how training ended", r.trainer.get("stop_reason") or "not recorded"),
                ("trainer execution", r.trainer.get("execution")),
            ],
        ),
        (
            "Blessing",
            [("decision", verdict), *[("reason", reason) for reason in r.blessing.get("reasons", [])]],
        ),
        (
            "Baseline",
            [
                ("model artifact", r.baseline.get("model_id") or "-"),
                ("uri", r.baseline.get("uri")),
                ("note", r.baseline.get("note")),
            ],
        ),
        (
            "Evaluation",
            [
                ("execution", r.evaluation.get("execution")),
                ("eval examples", r.evaluation.get("eval_examples")),
                ("fairness metric", r.evaluation.get("fairness_metric")),
                ("fairness gaps", r.evaluation.get("fairness_gaps")),
                ("settings", r.evaluation.get("settings")),
            ],
        ),
    ]
    sections.insert(1, ("Serving check", _serving_check_rows(r.serving_check)))
    if r.rollouts:
        sections.append(("Canary rollouts", _rollout_rows(r)))
    if r.aliases:
        sections.append(("Aliases", alias_rows(r.aliases)))
    if r.gaps:
        sections.append(("Missing from lineage", [("gap", g) for g in r.gaps]))
    return sections


# The Pusher's serving-check figures on a PushedModel (components/pusher, docs/serving.md).
SERVING_CHECK_KEYS = (
    "serving_server",
    "serving_protocol",
    "serving_note",
    "load_requests",
    "load_concurrency",
    "load_errors",
    "load_seconds",
    "latency_p99_ms",
    "latency_slo_p95_ms",
    "predictions_checked",
    "predictions_match",
    "predictions_max_difference",
    "predictions_tolerance",
)


def _serving_check_rows(check: dict[str, Any]) -> list[tuple[str, Any]]:
    """Where the pushed model was checked, and what it measured (pushes made before the
    check ran in a model server have only p50/p95)."""
    if "serving_server" not in check:
        return [("server", "not recorded (only the in-process p50 / p95 above)")]
    server = check.get("serving_server")
    if check.get("serving_protocol") not in (None, "", "none"):
        server = f"{server} ({check['serving_protocol']} REST)"
    match = check.get("predictions_match")
    slo = check.get("latency_slo_p95_ms")
    verdict = "equal" if match in (1, True) else "DIFFERENT"
    get = check.get
    rows: list[tuple[str, Any]] = [
        ("server", server),
        ("note", check.get("serving_note")),
        (
            "predictions",
            "not compared (in-process)"
            if match is None
            else f"{verdict} on {_fmt(get('predictions_checked'))} eval examples (max difference"
            f" {_fmt(get('predictions_max_difference'))}, tolerance {_fmt(get('predictions_tolerance'))})",
        ),
        (
            "load",
            f"{_fmt(get('load_requests'))} requests at concurrency {_fmt(get('load_concurrency'))},"
            f" {_fmt(get('load_errors'))} errors, {_fmt(get('load_seconds'))} s",
        ),
        (
            "latency p50 / p95 / p99 ms",
            f"{_fmt(check.get('latency_p50_ms'))} / {_fmt(check.get('latency_p95_ms'))} / "
            f"{_fmt(check.get('latency_p99_ms'))}",
        ),
        ("p95 SLO ms", "none" if not slo else slo),
    ]
    return [(k, v) for k, v in rows if k != "note" or v]


def _shown_state(key: str, value: Any) -> Any:
    """An execution state in the words of the run summary (``COMPLETE`` -> ``SUCCEEDED``)."""
    from kubetfx.lineage.graph import task_state

    return task_state(str(value), {}) if key == "state" else value


def _validation_order(key: str) -> tuple[int, str]:
    return (["execution", "state"].index(key) if key in ("execution", "state") else 2, key)


def _slice_order(name: str) -> tuple[int, str]:
    """The overall slice first, then single features, then crosses, each alphabetically."""
    if name.lower() == "overall":
        return (0, "")
    return (1 + name.count(","), name)


def _slice_table(r: AuditRecord) -> tuple[list[str], list[list[Any]]]:
    """One row per slice, one column per metric, in a fixed order (lineage keeps them in
    structs, which come back in any order)."""
    slices = r.evaluation.get("slices") or {}
    metrics = sorted({name for values in slices.values() for name in values if name != "examples"})
    headers = ["slice", "examples", *metrics]
    rows = [
        [name, slices[name].get("examples"), *[slices[name].get(m) for m in metrics]]
        for name in sorted(slices, key=_slice_order)
    ]
    return headers, rows


def to_markdown(r: AuditRecord) -> str:
    """The audit as Markdown."""
    lines = [f"# Audit: {r.model_name} version {r.version}", ""]
    for title, rows in _sections(r):
        lines += [f"## {title}", "", "| | |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v).replace('|', '/')} |" for k, v in rows]
        lines.append("")
    headers, slices = _slice_table(r)
    lines += ["## Metrics per slice", ""]
    if slices:
        lines += ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
        lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in slices]
    else:
        lines.append("Not in lineage.")
    return "\n".join(lines) + "\n"


def to_html(r: AuditRecord) -> str:
    """The audit as one self-contained HTML page."""
    from kubetfx.reports import page, table

    parts = []
    for title, rows in _sections(r):
        parts.append(f"<h2>{html.escape(title)}</h2>" + table(["", ""], [[k, _fmt(v)] for k, v in rows]))
    headers, slices = _slice_table(r)
    parts.append(
        "<h2>Metrics per slice</h2>"
        + (
            table(headers, [[_fmt(c) for c in row] for row in slices], numeric=range(1, len(headers)))
            if slices
            else "<p>Not in lineage.</p>"
        )
    )
    return page(f"Audit: {r.model_name} version {r.version}", parts)
