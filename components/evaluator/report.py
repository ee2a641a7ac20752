"""The Evaluator's HTML report: verdict and reasons, per-slice metrics, the positive class
and a fairness chart per feature (self-contained, as every kubetfx report: see
:mod:`kubetfx.reports`)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from kubetfx.reports import Markup, bar, page, table

if TYPE_CHECKING:
    from kubetfx.components.evaluator.executor import EvalResult


def _ci(low: float, high: float) -> str:
    return f"{low:.3f} to {high:.3f}"


def _positive_class_note(result: Any) -> str:
    """Which label value the rates count as positive."""
    classes = ", ".join(html.escape(str(c)) for c in result.classes)
    label = html.escape(getattr(result, "label_key", "") or "the label")
    threshold = getattr(result, "fairness_threshold", None)
    above = f" when its predicted probability is over {threshold:g}" if threshold is not None else ""
    if result.binary:
        positive = html.escape(str(getattr(result, "positive_class", "") or result.classes[1]))
        return (
            f"<p>Positive class: <b>{positive}</b> ({label} = '{positive}'; classes {classes})."
            f" Rates count an example as predicted positive{above}; precision and recall at 0.5.</p>"
        )
    return (
        f"<p>Classes of {label}: {classes}. Per-class rates are one-vs-rest: each class in turn is"
        " the positive class, the others negative; a multi-class model is gated on accuracy.</p>"
    )


def evaluation_html(result: EvalResult, title: str, baseline: str = "") -> str:
    """The Evaluator's report: verdict and reasons, per-slice metrics with the gated
    metric's counts and intervals, the positive class, a fairness chart per feature."""
    verdict = (
        ("<p class='ok'>BLESSED</p>" if result.blessed else "<p class='warn'>NOT BLESSED</p>")
        + "<ul>"
        + "".join(
            f"<li class='{'ok' if c.passed else 'warn'}'>{html.escape(c.detail)}</li>" for c in result.checks
        )
        + "</ul>"
    )
    sections = [verdict]
    sections.append(
        f"<p>Baseline: {html.escape(baseline)}</p>" if baseline else "<p class='muted'>No baseline model.</p>"
    )
    sections.append(_positive_class_note(result))
    gated = result.fairness_metric
    rate_names = ["fnr", "fpr"] if result.binary else []
    columns = [
        "accuracy",
        *(["auc", "precision", "recall"] if result.binary else ["macro_auc", "macro_recall"]),
    ]
    columns += rate_names
    has_baseline = any(r.baseline for r in result.slices)
    counted = ["positives", "negatives"] if result.binary else []
    headers = ["slice", "examples", *counted, *columns, f"{gated} counts", f"{gated} 95% CI"]
    headers += ["baseline accuracy"] if has_baseline else []
    rows = []
    for row in result.slices:
        cells: list[Any] = [row.slice, row.example_count]
        estimates = getattr(row, "estimates", {})
        if result.binary:
            cells.append(estimates["fnr"].denominator if "fnr" in estimates else 0)
            cells.append(estimates["fpr"].denominator if "fpr" in estimates else 0)
        cells += [_round(row.metrics.get(c, "")) for c in columns]
        estimate = estimates.get(gated)
        cells.append(estimate.counts() if estimate is not None else "")
        cells.append(_ci(estimate.low, estimate.high) if estimate is not None else "")
        if has_baseline:
            cells.append(_round(row.baseline.get("accuracy", "")))
        rows.append(cells)
    sections.append("<h2>Metrics per slice</h2>" + table(headers, rows, numeric=range(1, len(headers))))
    for feature, entry in result.fairness.items():
        estimates = entry.get("estimates", {})
        not_gated = set(entry["not_gated"])
        chart_rows = []
        for name, e in estimates.items():
            value = e["value"]
            shown = Markup(bar(value)) if 0 <= value <= 1 else _round(value)
            counts = (
                f"{e['numerator']}/{e['denominator']} {e['of']}"
                if e["numerator"] is not None
                else f"{e['positives']} positives, {e['negatives']} negatives"
            )
            state = Markup("<span class='muted'>too few to gate</span>") if name in not_gated else "gated"
            chart_rows.append([name, shown, counts, _ci(e["low"], e["high"]), state])
        chart_rows += [
            [
                name,
                "",
                f"0 {entry.get('of', 'examples')}",
                "",
                Markup("<span class='muted'>nothing to count</span>"),
            ]
            for name in entry["not_gated"]
            if name not in estimates
        ]
        gap = entry.get("gap")
        head = f"<h2>Fairness: {html.escape(entry['metric'])} by {html.escape(feature)}</h2>"
        if gap is not None:
            low, high = entry.get("gap_interval", [gap, gap])
            level = entry.get("gap_confidence", 0.95)
            verdict_text = (
                "shown to exceed the allowed gap" if entry.get("significant") else "not shown to exceed it"
            )
            note = (
                f"<p>Gap {gap:.3f} between {html.escape(entry['low'])} and {html.escape(entry['high'])};"
                f" its {level * 100:.3g}% interval is {_ci(low, high)}: {verdict_text}.</p>"
            )
        else:
            note = "<p class='muted'>Fewer than two slices large enough to compare.</p>"
        minimum = entry.get("min_slice_size")
        if minimum is not None:
            note += (
                f"<p class='muted'>Slices are compared when they have at least {minimum}"
                f" {html.escape(entry.get('of', 'examples'))}.</p>"
            )
        sections.append(head + note + table(["slice", entry["metric"], "counts", "95% CI", ""], chart_rows))
    if result.confusion:
        headers = ["actual \\ predicted", *result.classes]
        matrix = [[cls, *counts] for cls, counts in zip(result.classes, result.confusion, strict=False)]
        sections.append(
            "<h2>Confusion matrix (overall)</h2>" + table(headers, matrix, numeric=range(1, len(headers)))
        )
    return page(title, sections)


def _round(value: Any) -> Any:
    """Metrics to three decimals in the report (counts stay whole)."""
    return round(value, 3) if isinstance(value, float) else value
