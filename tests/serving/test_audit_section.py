"""The audit's serving-check section, from a PushedModel's recorded figures: a check in a
model server, one that ran in-process (said so, with why), and a push recorded before the
check ran in a server."""

from __future__ import annotations

from typing import Any

from kubetfx.lineage import audit


def record(serving_check: dict[str, Any]) -> audit.AuditRecord:
    return audit.AuditRecord(
        model_name="penguins",
        version=3,
        destination="/serving/penguins/3",
        pushed_at="2026-12-02T12:00:00Z",
        push_kind="push",
        model={},
        run={},
        trainer={},
        data={},
        schema={},
        validation={},
        evaluation={},
        blessing={"blessed": True, "reasons": []},
        baseline={},
        serving_check=serving_check,
    )


def section(text: str) -> str:
    return text.split("## Serving check")[1].split("## ")[0]


IN_SERVER = {
    "serving_server": "kserve 0.15.2",
    "serving_protocol": "v2",
    "load_requests": 2000,
    "load_concurrency": 8,
    "load_errors": 0,
    "load_seconds": 14.36,
    "latency_p50_ms": 52.11,
    "latency_p95_ms": 85.58,
    "latency_p99_ms": 106.19,
    "latency_slo_p95_ms": 200.0,
    "predictions_checked": 100,
    "predictions_match": 1,
    "predictions_max_difference": 0.0,
    "predictions_tolerance": 1e-05,
}


def test_a_check_in_a_model_server() -> None:
    shown = section(audit.to_markdown(record(IN_SERVER)))
    assert "| server | kserve 0.15.2 (v2 REST) |" in shown
    assert "| predictions | equal on 100 eval examples (max difference 0, tolerance 1e-05) |" in shown
    assert "| load | 2000 requests at concurrency 8, 0 errors, 14.36 s |" in shown
    assert "| latency p50 / p95 / p99 ms | 52.11 / 85.58 / 106.2 |" in shown
    assert "| p95 SLO ms | 200 |" in shown
    assert "Serving check" in audit.to_html(record(IN_SERVER))


def test_an_in_process_check_says_so() -> None:
    check = {
        **{k: v for k, v in IN_SERVER.items() if not k.startswith("predictions_")},
        "serving_server": "in-process",
        "serving_protocol": "none",
        "serving_note": "no serving environment (KUBETFX_SERVING_PYTHON or .venv-serving; make serving-env)",
        "predictions_checked": 0,
        "latency_slo_p95_ms": 0,
    }
    shown = section(audit.to_markdown(record(check)))
    assert "| server | in-process |" in shown and "| note | no serving environment" in shown
    assert "| predictions | not compared (in-process) |" in shown and "| p95 SLO ms | none |" in shown


def test_an_older_push_without_the_figures() -> None:
    shown = section(audit.to_markdown(record({"latency_p50_ms": 1.5, "latency_p95_ms": 2.5})))
    assert "| server | not recorded" in shown
