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
