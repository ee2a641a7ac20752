"""Self-contained HTML reports: no scripts, styles or fonts fetched from the network
(clusters often have no egress, and TFDV's facets view loads its code from CDNs)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:10px;background:#218bff;vertical-align:middle}
.warn{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}.muted{color:#656d76}
"""


def page(title: str, sections: Iterable[str]) -> str:
    """A whole HTML document."""
    body = "\n".join(sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(headers: list[str], rows: Iterable[list[Any]], numeric: Iterable[int] = ()) -> str:
    """An HTML table; cells are escaped unless they are ``Markup``."""
    numeric = set(numeric)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if isinstance(cell, Markup) else html.escape(_fmt(cell))
            cells.append(f"<td class='num'>{text}</td>" if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup(str):
    """Trusted HTML that :func:`table` does not escape."""


def bar(fraction: float, width: int = 120) -> Markup:
    """A small horizontal bar for a fraction in [0, 1]."""
    fraction = max(0.0, min(1.0, fraction))
    return Markup(f"<span class='bar' style='width:{int(fraction * width)}px'></span> {fraction:.1%}")


def write_report(artifact: Any, text: str) -> str:
    """Write an HTML report to an ``Output[HTML]`` artifact, named ``<uri>.html``.

    The file name ends in ``.html`` so that a browser renders it from a folder or an
    object store listing (KFP names the artifact after the output, ``report``). The
    artifact's URI is changed with it: KFP's launcher records and uploads the URI the
    executor output gives, and the Kubeflow UI reads the HTML from the recorded URI, so
    it still renders there. Returns the path written.
    """
    if not artifact.uri.endswith(".html"):
        artifact.uri = artifact.uri + ".html"
    with open(artifact.path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(artifact.path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# ---------------------------------------------------------------------- statistics


def statistics_html(
    stats_by_split: Mapping[str, Any], title: str = "Statistics", redact: Iterable[str] = ()
) -> str:
    """One page per Examples artifact: per split, numeric and categorical features."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from kubetfx.settings import is_redacted

    redacted = frozenset(redact)
    sections = []
    for split, stats_list in stats_by_split.items():
        dataset = stats_list.datasets[0]
        total = dataset.num_examples or 1
        sections.append(f"<h2>Split {html.escape(split)}: {dataset.num_examples} examples</h2>")
        numeric_rows, categorical_rows = [], []
        for feature in sorted(dataset.features, key=lambda f: f.path.step[-1] if f.path.step else f.name):
            name = ".".join(feature.path.step) or feature.name
            if feature.HasField("num_stats"):
                s = feature.num_stats
                present, missing = _present_and_missing(s.common_stats, total)
                median = _median(s)
                numeric_rows.append(
                    [
                        name,
                        statistics_pb2.FeatureNameStatistics.Type.Name(feature.type),
                        present,
                        bar(missing),
                        s.mean,
                        s.std_dev,
                        s.min,
                        median,
                        s.max,
                        s.num_zeros,
                    ]
                )
            elif feature.HasField("string_stats"):
                s = feature.string_stats
                present, missing = _present_and_missing(s.common_stats, total)
                if is_redacted(name, redacted):
                    top = Markup("<span class='muted'>redacted (KUBETFX_REDACT_FEATURES)</span>")
                else:
                    top = Markup(
                        "<br>".join(f"{html.escape(v.value)} ({int(v.frequency)})" for v in s.top_values[:5])
                    )
                categorical_rows.append([name, present, bar(missing), s.unique, top])
        if numeric_rows:
            sections.append("<h3>Numeric features</h3>")
            sections.append(
                table(
                    [
                        "feature",
                        "type",
                        "count",
                        "missing",
                        "mean",
                        "std dev",
                        "min",
                        "median",
                        "max",
                        "zeros",
                    ],
                    numeric_rows,
                    numeric=range(2, 10),
                )
            )
        if categorical_rows:
            sections.append("<h3>Categorical features</h3>")
            sections.append(
                table(
                    ["feature", "count", "missing", "unique", "top values"], categorical_rows, numeric=(1, 3)
                )
            )
    return page(title, sections)


def _present_and_missing(common: Any, total: int) -> tuple[int, float]:
    """Examples with a value, and the missing fraction: absent features and empty lists both
    count as missing (an empty CSV cell becomes an empty list in a tf.Example)."""
    empty = 0
    if common.max_num_values <= 1:
        empty = max(0, int(common.num_non_missing - common.tot_num_values))
    present = int(common.num_non_missing) - empty
    return present, (int(common.num_missing) + empty) / total


def _median(num_stats: Any) -> float | str:
    for histogram in num_stats.histograms:
        if histogram.type == histogram.QUANTILES and histogram.buckets:
            buckets = histogram.buckets
            return buckets[len(buckets) // 2].low_value
    return num_stats.median if num_stats.median else ""


# ---------------------------------------------------------------------- anomalies


def anomalies_html(result: Any, title: str = "Data validation") -> str:
    """The validator's report from its result (``ValidationResult``): the verdict, anomalies
    per split, the baseline (run, source, span), every feature's drift and skew distance,
    and features new since the baseline."""
    from kubetfx.settings import redact as redact_url

    sections = []
    count = result.anomaly_count
    sections.append(
        f"<p class='warn'>FAILED: {count} anomal{'y' if count == 1 else 'ies'}</p>"
        if count
        else "<p class='ok'>No anomalies</p>"
    )
    findings_by_split: dict[str, list[tuple[str, str]]] = {}
    for split, feature, text in result.findings():
        findings_by_split.setdefault(split, []).append((feature or "(dataset)", text))
    for split in result.anomalies:
        found = findings_by_split.get(split, [])
        if not found:
            sections.append(f"<h2>Split {html.escape(split)}: <span class='ok'>no anomalies</span></h2>")
            continue
        sections.append(
            f"<h2>Split {html.escape(split)}: <span class='warn'>{len(found)} "
            f"anomal{'y' if len(found) == 1 else 'ies'}</span></h2>"
        )
        sections.append(table(["feature", "anomaly"], [[f, t] for f, t in found]))
    sections.append("<h2>Drift</h2>")
    if result.baseline:
        where = html.escape(redact_url(result.baseline))
        sections.append(f"<p>Baseline: {html.escape(result.baseline_text())}<br>{where}</p>")
        rows = []
        for feature, value in sorted(result.drift.items()):
            limit = result.drift_thresholds.get(feature)
            state = (
                Markup("<span class='warn'>over threshold</span>")
                if limit is not None and value > limit
                else ""
            )
            rows.append([feature, value, "" if limit is None else limit, state])
        if rows:
            sections.append(table(["feature", "distance", "threshold", ""], rows, numeric=(1, 2)))
        else:
            sections.append("<p class='muted'>No schema feature is in both the data and the baseline.</p>")
        if result.new_features:
            sections.append(
                "<p>New since the baseline (no drift measured, nothing to compare with; only the"
                " schema's checks above can make them anomalies): "
                + html.escape(", ".join(result.new_features))
                + "</p>"
            )
        if result.gone_features:
            sections.append(
                "<p>In the baseline but not in this data (an anomaly only where the schema"
                " requires the feature): " + html.escape(", ".join(result.gone_features)) + "</p>"
            )
    else:
        sections.append(
            "<p class='muted'>No baseline: no earlier run of this pipeline read this data source.</p>"
        )
    if result.skew:
        sections.append("<h2>Training / serving skew</h2>")
        sections.append(table(["feature", "distance"], sorted(result.skew.items()), numeric=(1,)))
    return page(title, sections)


# ---------------------------------------------------------------------- evaluation


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


def evaluation_html(result: Any, title: str, baseline: str = "") -> str:
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
