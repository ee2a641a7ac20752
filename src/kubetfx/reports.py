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


def anomalies_html(
    anomalies_by_split: Mapping[str, Any],
    drift: Mapping[str, float],
    skew: Mapping[str, float],
    thresholds: Mapping[str, float],
    baseline: str,
    title: str = "Data validation",
) -> str:
    """Anomalies per split, then every feature's drift and skew distance."""
    sections = []
    for split, anomalies in anomalies_by_split.items():
        if not anomalies.anomaly_info:
            sections.append(f"<h2>Split {html.escape(split)}: <span class='ok'>no anomalies</span></h2>")
            continue
        count = len(anomalies.anomaly_info)
        sections.append(
            f"<h2>Split {html.escape(split)}: <span class='warn'>{count} anomalous features</span></h2>"
        )
        rows = [
            [feature, info.short_description, info.description]
            for feature, info in sorted(anomalies.anomaly_info.items())
        ]
        sections.append(table(["feature", "anomaly", "detail"], rows))
    if drift:
        sections.append(f"<h2>Drift against {html.escape(baseline or 'no baseline')}</h2>")
        rows = []
        for feature, value in sorted(drift.items()):
            limit = thresholds.get(feature)
            state = (
                Markup("<span class='warn'>over threshold</span>")
                if limit is not None and value > limit
                else ""
            )
            rows.append([feature, value, "" if limit is None else limit, state])
        sections.append(table(["feature", "distance", "threshold", ""], rows, numeric=(1, 2)))
    else:
        sections.append(
            "<h2>Drift</h2><p class='muted'>No earlier statistics of this pipeline to compare with.</p>"
        )
    if skew:
        sections.append("<h2>Training / serving skew</h2>")
        sections.append(table(["feature", "distance"], sorted(skew.items()), numeric=(1,)))
    return page(title, sections)


# ---------------------------------------------------------------------- evaluation


def evaluation_html(result: Any, title: str, baseline: str = "") -> str:
    """The Evaluator's report: verdict and reasons, per-slice metrics, fairness chart."""
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
    rate_names = ["fnr", "fpr"] if result.binary else []
    columns = [
        "accuracy",
        *(["auc", "precision", "recall"] if result.binary else ["macro_auc", "macro_recall"]),
    ]
    columns += rate_names
    has_baseline = any(r.baseline for r in result.slices)
    headers = ["slice", "examples", *columns] + (["baseline accuracy"] if has_baseline else [])
    rows = []
    for row in result.slices:
        cells: list[Any] = [row.slice, row.example_count]
        cells += [row.metrics.get(c, "") for c in columns]
        if has_baseline:
            cells.append(row.baseline.get("accuracy", ""))
        rows.append(cells)
    sections.append("<h2>Metrics per slice</h2>" + table(headers, rows, numeric=range(1, len(headers))))
    for feature, entry in result.fairness.items():
        values = entry.get("values", {})
        chart_rows = [
            [name, Markup(bar(value)) if 0 <= value <= 1 else value] for name, value in values.items()
        ]
        chart_rows += [
            [name, Markup("<span class='muted'>too small to gate</span>")] for name in entry["not_gated"]
        ]
        gap = entry.get("gap")
        head = f"<h2>Fairness: {html.escape(entry['metric'])} by {html.escape(feature)}</h2>"
        note = (
            f"<p>Gap {gap:.3f} between {html.escape(entry['low'])} and {html.escape(entry['high'])}.</p>"
            if gap is not None
            else "<p class='muted'>Fewer than two slices large enough to compare.</p>"
        )
        sections.append(head + note + table(["slice", entry["metric"]], chart_rows))
    if result.confusion:
        headers = ["actual \\ predicted", *result.classes]
        matrix = [[cls, *counts] for cls, counts in zip(result.classes, result.confusion, strict=False)]
        sections.append(
            "<h2>Confusion matrix (overall)</h2>" + table(headers, matrix, numeric=range(1, len(headers)))
        )
    return page(title, sections)
