"""serving_drift's HTML report: the verdict, each feature's distances against its
thresholds, the predicted classes against the evaluation's, and the schema's anomalies."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from kubetfx.reports import Markup, page, table
from kubetfx.settings import redact

if TYPE_CHECKING:
    from kubetfx.components.serving_drift.executor import DriftResult

OVER = Markup("<span class='warn'>over threshold</span>")


def render(result: DriftResult) -> str:
    """The whole page (self-contained, see :mod:`kubetfx.reports`)."""
    title = f"Serving drift of {result.model_name or 'the served model'}"
    sections = []
    state = "warn" if result.drifted or result.anomalies else "ok" if result.measured else "muted"
    sections.append(f"<p class='{state}'>{html.escape(result.reason)}</p>")
    if result.baseline:
        sections.append(f"<p>Compared with: {html.escape(redact(result.baseline))}</p>")
    if result.measured:
        window = result.window or "every logged request"
        sections.append(
            f"<p>Window: {html.escape(window)}: {result.requests} requests, {result.rows} rows "
            f"(at least {result.thresholds.min_requests} rows are needed to measure drift).</p>"
        )
    limits = result.limits or result.thresholds.by_measure()
    if result.distances:
        sections.append("<h2>Features</h2>")
        rows = []
        for feature, measures in sorted(result.distances.items()):
            for measure, value in sorted(measures.items()):
                over = measure in result.over(measures)
                rows.append([feature, measure, value, limits.get(measure, ""), OVER if over else ""])
        sections.append(table(["feature", "measure", "distance", "threshold", ""], rows, numeric=(2, 3)))
        sections.append(
            "<p class='muted'>A threshold is the one set, or the distance chance alone reaches one time"
            " in a thousand on samples this size when that is larger.</p>"
        )
    if result.expected_predicted and not result.predicted:
        sections.append("<h2>Predictions</h2>")
        sections.append(
            "<p class='muted'>The logs hold no responses with a predicted class: the predictions"
            " were not compared with the evaluation's.</p>"
        )
    elif result.predicted or result.expected_predicted:
        sections.append("<h2>Predictions</h2>")
        classes = sorted(set(result.predicted) | set(result.expected_predicted))
        served = sum(result.predicted.values()) or 1.0
        expected = sum(result.expected_predicted.values()) or 1.0
        rows = [
            [c, result.predicted.get(c, 0) / served, result.expected_predicted.get(c, 0) / expected]
            for c in classes
        ]
        sections.append(table(["class", "share served", "share at evaluation"], rows, numeric=(1, 2)))
        for measure, value in sorted(result.prediction.items()):
            flag = " (over threshold)" if measure in result.over(result.prediction) else ""
            sections.append(f"<p>{html.escape(measure)}: {value:.4f}{flag}</p>")
    if result.anomalies:
        sections.append(f"<h2 class='warn'>Schema anomalies at serving: {len(result.anomalies)}</h2>")
        sections.append(table(["feature", "anomaly"], [[f, a] for f, a in sorted(result.anomalies.items())]))
    if result.unknown_features:
        sections.append(
            "<p>In requests, unknown to training (not measured): "
            + html.escape(", ".join(result.unknown_features))
            + "</p>"
        )
    if result.missing_features:
        sections.append(
            "<p>Expected at serving, in no request (not measured): "
            + html.escape(", ".join(result.missing_features))
            + "</p>"
        )
    return page(title, sections)
