"""The HTML model card: one self-contained page (no scripts, no fetched styles or fonts),
rendered by the Kubeflow UI as the ``model_card`` component's HTML output."""

from __future__ import annotations

import html
from typing import Any

from kubetfx.modelcard.card import (
    ModelCard,
    blessing_line,
    limitations,
    overview,
    push_line,
    when,
)
from kubetfx.reports import Markup, page, table

CARD_STYLE = """
<style>
body{max-width:1100px}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 4px}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-size:13px;font-weight:600;
 border:1px solid}
h3{font-size:14px;margin:14px 0 4px}
p{font-size:14px;line-height:1.45}
table.facts th{background:none;font-weight:600;color:#424a53;white-space:nowrap;width:14em}
.badge.ok{background:#dafbe1;border-color:#1a7f37;color:#116329}
.badge.bad{background:#ffebe9;border-color:#cf222e;color:#a40e26}
.badge.info{background:#ddf4ff;border-color:#218bff;color:#0a3069}
.badge.muted{background:#f6f8fa;border-color:#d0d7de;color:#656d76}
p.overview{font-size:14px;line-height:1.5;max-width:70em}
section{border-top:1px solid #d0d7de;margin-top:18px}
td.wrap{max-width:640px;word-break:break-word}
.interval{color:#656d76;font-size:12px}
footer{margin-top:28px;color:#656d76;font-size:12px}
</style>
"""


def _fmt(value: Any) -> str:
    from kubetfx.lineage.graph import stable

    value = stable(value)
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value) or "-"
    return str(value)


def _badge(text: str, kind: str) -> str:
    return f"<span class='badge {kind}'>{html.escape(text)}</span>"


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def _facts(rows: list[tuple[str, Any]]) -> str:
    """A two-column table of facts: a name, its value."""
    body = "".join(
        f"<tr><th scope='row'>{html.escape(k)}</th><td class='wrap'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table class='facts'><tbody>{body}</tbody></table>"


def _status(ok: bool | None, yes: str, no: str, unknown: str = "-") -> Markup:
    if ok is None:
        return Markup(f"<span class='muted'>{html.escape(unknown)}</span>")
    return Markup(f"<span class='{'ok' if ok else 'warn'}'>{html.escape(yes if ok else no)}</span>")


def _summary(card: ModelCard) -> str:
    r = card.record
    blessed = r.blessing.get("blessed") if r.blessing else None
    badges = [
        _badge(
            blessing_line(card).replace(" by the Evaluator", ""),
            "ok" if blessed else "bad" if blessed is False else "muted",
        ),
        _badge(
            f"version {r.version}" if card.pushed.get("pushed") in (1, True) else "not pushed",
            "info" if r.version else "muted",
        ),
    ]
    serving = card.serving
    if serving["checked"]:
        ok = serving.get("slo_met") is not False and str(serving.get("predictions_match", 1)) in (
            "1",
            "1.0",
            "True",
        )
        badges.append(_badge(f"serving check: {serving.get('serving_server')}", "ok" if ok else "bad"))
    else:
        badges.append(_badge("not checked in a model server", "muted"))
    for alias in (r.aliases or {}).get("held", []):
        badges.append(_badge(alias, "info"))
    for rollout in card.rollouts:
        if rollout["role"] == "canary":
            state = rollout["state"]
            badges.append(
                _badge(
                    f"rollout: {state}",
                    "ok" if state == "promoted" else "bad" if state == "rolled_back" else "info",
                )
            )
    return (
        f"<div class='summary'>{''.join(badges)}</div><p class='overview'>{html.escape(overview(card))}</p>"
    )


def _details(card: ModelCard) -> str:
    r = card.record
    return _section(
        "Model details",
        _facts(
            [
                ("model name", r.model_name),
                ("version", r.version or "not pushed"),
                ("push", push_line(card)),
                ("aliases held now", ", ".join((r.aliases or {}).get("held", [])) or "none"),
                ("pipeline / run", f"{r.run.get('pipeline') or '-'} / {r.run.get('run_id') or '-'}"),
                ("run started", r.run.get("started")),
                ("model artifact", f"{r.model.get('artifact')} ({r.model.get('uri')})"),
                ("trainer execution", r.trainer.get("execution")),
                ("component code version", r.trainer.get("code_version")),
            ]
        ),
    )


def _data(card: ModelCard) -> str:
    r = card.record
    rows = [[split, count] for split, count in sorted((r.data.get("row_counts") or {}).items())]
    v = r.validation
    validation = (
        _facts(
            [
                ("verdict", v.get("verdict")),
                ("anomalies", v.get("anomaly_count")),
                ("anomalous features", v.get("anomalous_features")),
                ("drifted features", v.get("drifted_features")),
                ("skewed features", v.get("skewed_features")),
                ("drift baseline", v.get("drift_baseline")),
            ]
        )
        if v
        else "<p class='muted'>No data validation of this data is in lineage.</p>"
    )
    return _section(
        "Data",
        _facts(
            [
                ("source", r.data.get("source")),
                ("span / version", f"{_fmt(r.data.get('span'))} / {_fmt(r.data.get('version'))}"),
                ("fingerprint", r.data.get("fingerprint")),
                ("input format", card.examples.get("input_format")),
                ("examples artifact", r.data.get("artifact")),
            ]
        ),
        "<h3>Rows per split</h3>",
        table(["split", "rows"], rows, numeric=[1]) if rows else "<p class='muted'>Not in lineage.</p>",
        "<h3>Data validation</h3>",
        validation,
    )


def _schema(card: ModelCard) -> str:
    from kubetfx.modelcard.card import input_features

    features = input_features(card)
    open_features = card.schema.get("open_features") or {}
    rows = [[f["key"], f["value"], open_features.get(f["key"], "")] for f in features]
    return _section(
        "Schema",
        _facts(
            [
                ("schema artifact", card.record.schema.get("artifact")),
                ("source", card.record.schema.get("source")),
                ("label", card.schema.get("label_key")),
                ("drift threshold", card.schema.get("drift_threshold")),
            ]
        ),
        table(["feature", "role", "inferred as open"], rows)
        if rows
        else "<p class='muted'>Not in lineage.</p>",
    )


def _training(card: ModelCard) -> str:
    r = card.record
    return _section(
        "Training",
        _facts(
            [
                ("framework", r.model.get("framework")),
                ("model code", r.model.get("source")),
                ("hyper-parameters", r.trainer.get("hyperparameters")),
                ("epochs / steps", f"{_fmt(card.model.get('epochs'))} / {_fmt(card.model.get('steps'))}"),
                (
                    "train / eval examples",
                    f"{_fmt(card.model.get('train_examples'))} / {_fmt(card.model.get('eval_examples'))}",
                ),
                ("device / strategy", f"{_fmt(r.trainer.get('device'))} / {_fmt(r.trainer.get('strategy'))}"),
                ("training seconds", r.trainer.get("wall_seconds")),
                ("training metrics", r.model.get("metrics")),
                ("warnings", card.model.get("warnings")),
            ]
        ),
    )


def _evaluation(card: ModelCard) -> str:
    r = card.record
    slices = r.evaluation.get("slices") or {}
    if not slices:
        return _section(
            "Evaluation per slice", "<p class='muted'>No evaluation of this model is in lineage.</p>"
        )
    intervals = {
        (s["slice"], f["metric"]): s for f in card.fairness for s in f["slices"] if s.get("low") is not None
    }
    metrics = sorted({m for values in slices.values() for m in values if m != "examples"})
    rows = []
    for name in sorted(slices, key=lambda n: (n.lower() != "overall", n.count(","), n)):
        row: list[Any] = [name, slices[name].get("examples")]
        for metric in metrics:
            value = _fmt(slices[name].get(metric))
            est = intervals.get((name, metric))
            if est:
                interval = f"[{_fmt(est['low'])}, {_fmt(est['high'])}]"
                value = Markup(f"{html.escape(value)} <span class='interval'>{interval}</span>")
            row.append(value)
        rows.append(row)
    metric = html.escape(str(r.evaluation.get("fairness_metric") or ""))
    note = f"<p class='muted'>In brackets: the 95% interval of {metric} for the fairness slices.</p>"
    return _section(
        "Evaluation per slice",
        f"<p>{_fmt(r.evaluation.get('eval_examples'))} eval examples; evaluator execution "
        f"{_fmt(r.evaluation.get('execution'))}.</p>",
        table(["slice", "examples", *metrics], rows, numeric=range(1, len(metrics) + 2)),
        note if intervals else "",
    )


def _fairness(card: ModelCard) -> str:
    if not card.fairness:
        return _section("Fairness", "<p class='muted'>No fairness gate in lineage.</p>")
    rows = []
    for f in card.fairness:
        interval = (
            f"{_fmt(f['gap_low'])} to {_fmt(f['gap_high'])} ({f['gap_level'] * 100:.3g}%)"
            if f["gap_low"] is not None
            else "-"
        )
        rows.append(
            [
                f["feature"],
                f["metric"],
                _fmt(f["gap"]),
                interval,
                _status(f["passed"], "passed", "FAILED", "not gated"),
                Markup(f"<span class='muted'>{html.escape(f['detail'] or '-')}</span>"),
            ]
        )
    per_slice = [
        [
            f["feature"],
            s["slice"],
            _fmt(s["value"]),
            f"{_fmt(s['low'])} to {_fmt(s['high'])}",
            f"{_fmt(s['numerator'])}/{_fmt(s['denominator'])} {s['of']}",
        ]
        for f in card.fairness
        for s in f["slices"]
    ]
    from kubetfx.modelcard.card import fairness_chart

    chart = fairness_chart(card)
    picture = (
        f"<p><img alt='{html.escape(card.fairness[0]['metric'] or 'metric')} per fairness slice, with 95% "
        f"intervals' src='data:image/png;base64,{chart}' style='max-width:700px'></p>"
        if chart
        else ""
    )
    return _section(
        "Fairness",
        table(["feature", "metric", "gap", "gap interval", "gate", "the Evaluator's words"], rows),
        picture,
        "<h3>Per slice (95% intervals)</h3>"
        + table(["feature", "slice", "value", "interval", "counts"], per_slice)
        if per_slice
        else "",
    )


def _blessing(card: ModelCard) -> str:
    r = card.record
    checks = [
        [_status(bool(c.get("passed")), "passed", "FAILED"), c.get("name", ""), c.get("detail", "")]
        for c in r.blessing.get("checks", [])
        if isinstance(c, dict)
    ]
    return _section(
        "Blessing",
        f"<p><b>{html.escape(blessing_line(card))}</b>; baseline: "
        f"{html.escape(_fmt(r.baseline.get('uri') or r.baseline.get('note')))}"
        + (f" (model {r.baseline['model_id']})" if r.baseline.get("model_id") else "")
        + "</p>",
        table(["gate", "check", "detail"], checks) if checks else "",
    )


def _serving(card: ModelCard) -> str:
    s = card.serving
    if not s["checked"]:
        rows = [("status", s["summary"])]
        rows += [
            (k.replace("_", " "), s[k]) for k in ("latency_p50_ms", "latency_p95_ms") if s.get(k) is not None
        ]
        return _section("Serving check", _facts(rows))
    rows = [
        ("server / protocol", f"{_fmt(s.get('serving_server'))} / {_fmt(s.get('serving_protocol'))}"),
        ("load", f"{_fmt(s.get('load_requests'))} requests at concurrency {_fmt(s.get('load_concurrency'))}"),
        ("errors", s.get("load_errors")),
        ("load seconds", s.get("load_seconds")),
        (
            "latency p50 / p95 / p99 ms",
            " / ".join(_fmt(s.get(f"latency_{p}_ms")) for p in ("p50", "p95", "p99")),
        ),
        ("p95 SLO ms", s.get("latency_slo_p95_ms")),
        ("predictions checked", s.get("predictions_checked")),
        ("largest prediction difference", s.get("predictions_max_difference")),
    ]
    return _section(
        "Serving check",
        _facts(rows),
        table(
            ["SLO", "predictions"],
            [
                [
                    _status(s.get("slo_met"), "met", "MISSED"),
                    _status(
                        None
                        if s.get("predictions_match") is None
                        else str(s.get("predictions_match")) in ("1", "1.0", "True"),
                        "equal the in-process signature's",
                        "DIFFER from the in-process signature's",
                    ),
                ]
            ],
        ),
    )


def _deployment(card: ModelCard) -> str:
    from kubetfx.lineage.audit import alias_rows

    pushes = [
        [
            Markup(f"<b>{p['version']}</b>") if p["version"] == card.record.version else p["version"],
            p["pushed_at"],
            p["how"],
            p["destination"],
        ]
        for p in card.pushes[:20]
    ]
    parts = [
        "<h3>Versions of this model</h3>",
        table(["version", "pushed at", "how", "destination"], pushes)
        if pushes
        else "<p class='muted'>None recorded.</p>",
    ]
    parts.append("<h3>Stepped rollouts</h3>")
    if not card.rollouts:
        parts.append("<p class='muted'>This version took part in no stepped rollout recorded in lineage.</p>")
    for rollout in card.rollouts:
        state = rollout["state"]
        shown = _status(state == "promoted", state, state) if state in ("promoted", "rolled_back") else state
        reason = html.escape(" - " + rollout["reason"]) if rollout["reason"] else ""
        started, finished = when(rollout["started_at"]), when(rollout["finished_at"]) or "-"
        parts.append(
            f"<p>Rollout {rollout['execution']}: canary version {rollout['canary_version']} against stable "
            f"version {rollout['stable_version']} (this version: {rollout['role']}), "
            f"{shown if isinstance(shown, Markup) else html.escape(shown)}{reason}; "
            f"{started} to {finished}</p>"
        )
        steps = [
            [
                f"{_fmt(step.get('percent'))}%",
                when(step.get("decided_at")),
                _status(
                    None if step.get("decision") == "hold" else step.get("decision") == "promote",
                    "promote",
                    "rollback",
                    str(step.get("decision", "-")),
                ),
                _fmt(step.get("canary_error_rate")),
                _fmt(step.get("stable_error_rate")),
                _fmt(step.get("canary_p95_ms")),
                _fmt(step.get("stable_p95_ms")),
                step.get("reason", ""),
            ]
            for step in rollout["steps"]
        ]
        parts.append(
            table(
                [
                    "canary traffic",
                    "decided at",
                    "decision",
                    "canary errors",
                    "stable errors",
                    "canary p95 ms",
                    "stable p95 ms",
                    "reason",
                ],
                steps,
                numeric=range(3, 7),
            )
        )
    parts.append("<h3>Aliases</h3>")
    story = card.record.aliases or {}
    parts.append(_facts(alias_rows(story)) if story else "<p class='muted'>No aliases in lineage.</p>")
    return _section("Deployment", *parts)


def _limitations(card: ModelCard) -> str:
    found = limitations(card)
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(text)}</li>" for text in found)
    return _section("Limitations and what lineage does not say", f"<ul>{items}</ul>")


def render(card: ModelCard) -> str:
    """The card as one HTML page."""
    parts = [
        CARD_STYLE,
        _summary(card),
        _details(card),
        _data(card),
        _schema(card),
        _training(card),
        _evaluation(card),
        _fairness(card),
        _blessing(card),
        _serving(card),
        _deployment(card),
        _limitations(card),
        f"<footer>Built from ML Metadata lineage alone at {html.escape(when(card.generated_at))}; "
        "model_card.json next to it follows the Model Card Toolkit schema v0.0.2.</footer>",
    ]
    return page(card.title, parts)
