"""The Pusher's HTML report: what was pushed (or why not), and the serving check: where it
ran, whether the server's predictions equal the in-process signature's, and the load's
latency against the SLO."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from kubetfx.reports import Markup, page, table
from kubetfx.settings import redact

if TYPE_CHECKING:
    from kubetfx.components.pusher.executor import PushResult
    from kubetfx.components.serving_check.serving import ServingCheck

OK = Markup("<span class='ok'>pass</span>")
FAIL = Markup("<span class='warn'>FAIL</span>")


def render(
    model_name: str, result: PushResult | None, check: ServingCheck | None, slo_p95_ms: float, error: str = ""
) -> str:
    """The whole page (self-contained, see :mod:`kubetfx.reports`)."""
    sections = []
    if error:
        sections.append(f"<p class='warn'>Not pushed: {html.escape(redact(error))}</p>")
    elif result is not None and result.pushed:
        sections.append(
            f"<p class='ok'>Pushed as version {result.version}: {html.escape(redact(result.destination))}</p>"
        )
    elif result is not None:
        sections.append(f"<p class='muted'>Not pushed: {html.escape(result.reason)}</p>")
    if check is None:
        sections.append("<p class='muted'>No serving check ran.</p>")
        return page(f"Pusher: {model_name}", sections)
    where = check.server + (f", {check.protocol} REST on loopback" if check.protocol else "")
    sections.append("<h2>Serving check</h2>")
    if not check.in_server:
        sections.append(
            "<p class='warn'>In-process: the model was not served by a model server"
            f" ({html.escape(check.server_note)}); predictions were not compared.</p>"
        )
    if check.predictions_match is None:
        match_row = ["predictions", "not compared (in-process)", ""]
    else:
        match_row = [
            "predictions equal the in-process signature's",
            f"{check.predictions_checked} eval examples, largest difference {check.max_difference:.3g}"
            f" (tolerance {check.tolerance:g})" + (f"; {check.mismatch}" if check.mismatch else ""),
            OK if check.predictions_match else FAIL,
        ]
    slo_row = (
        [
            "p95 within the SLO",
            f"{check.p95_ms:.3f} ms against {slo_p95_ms:g} ms",
            OK if check.p95_ms <= slo_p95_ms else FAIL,
        ]
        if slo_p95_ms > 0
        else ["p95 within the SLO", "no SLO set", ""]
    )
    rows = [
        ["server", where, ""],
        ["signature", f"{check.signature}: {', '.join(check.outputs)}", ""],
        match_row,
        [
            "load",
            f"{check.requests} single-example requests at concurrency {check.concurrency}"
            f" in {check.seconds:.2f} s",
            "",
        ],
        [
            "load errors",
            f"{check.errors}" + (f": {'; '.join(check.error_samples)}" if check.error_samples else ""),
            OK if not check.errors else FAIL,
        ],
        slo_row,
    ]
    sections.append(table(["check", "measured", ""], rows))
    sections.append("<h2>Latency (ms)</h2>")
    sections.append(
        table(
            ["p50", "p95", "p99"],
            [[round(check.p50_ms, 3), round(check.p95_ms, 3), round(check.p99_ms, 3)]],
            numeric=(0, 1, 2),
        )
    )
    return page(f"Pusher: {model_name}", sections)
