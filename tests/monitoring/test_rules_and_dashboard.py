"""The alert rules and the Grafana dashboard shipped in kustomize/components/monitoring.

Rules are checked and unit-tested by the real ``promtool`` (Debian's prometheus package):
each alert is shown firing and quiet in tests/alerts.test.yml. Rules and dashboard may name
only metrics kubetfx exports (kubetfx.metrics.FAMILIES) and only labels those metrics carry.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubetfx.metrics import FAMILIES

from .conftest import binary

MONITORING = Path(__file__).resolve().parents[2] / "kustomize/components/monitoring"
RULES = MONITORING / "kubetfx-alerts.rules.yml"
OPERATOR_RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "kubetfx-dashboard.json"
# Labels every pushed series has besides its family's: the push's job, the grouping key,
# and the instance a scrape adds.
GROUP_LABELS = {"job", "instance", "pipeline", "task", "model"}
METRIC = re.compile(r"\b(kubetfx_[a-z0-9_]+)")


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary("promtool"), *args], cwd=MONITORING / "tests", capture_output=True, text=True, timeout=120
    )


def test_promtool_checks_the_rules() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_each_alert_fires_and_stays_quiet_under_promtool() -> None:
    done = _promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "tests/alerts.test.yml").read_text()))
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert tested == alerts, f"alerts without a promtool case: {alerts - tested}"


def test_promtool_fails_a_rule_that_does_not_do_what_its_case_says(tmp_path: Path) -> None:
    """The cases bind: with the drift comparison turned around, the drift case fails."""
    broken = RULES.read_text().replace(
        "> on (job, instance, pipeline, task, feature)", "< on (job, instance, pipeline, task, feature)"
    )
    assert broken != RULES.read_text()
    (tmp_path / "kubetfx-alerts.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/alerts.test.yml").write_text((MONITORING / "tests/alerts.test.yml").read_text())
    done = subprocess.run(
        [binary("promtool"), "test", "rules", "alerts.test.yml"],
        cwd=tmp_path / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "KubetfxDataDrift" in done.stdout + done.stderr


def test_the_operator_rule_holds_the_same_groups_as_the_plain_file() -> None:
    operator = yaml.safe_load(OPERATOR_RULES.read_text())
    assert operator["apiVersion"] == "monitoring.coreos.com/v1" and operator["kind"] == "PrometheusRule"
    assert operator["spec"] == yaml.safe_load(RULES.read_text())


def _labels_used(expr: str) -> set[str]:
    found = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        found |= {label.strip() for label in group.split(",") if label.strip()}
    for selector in re.findall(r"\{([^}]*)\}", expr):
        found |= set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", selector))
    return found


def _check_expr(expr: str, where: str) -> None:
    names = set(METRIC.findall(expr))
    assert names, f"{where}: {expr!r} names no kubetfx metric"
    unknown = names - set(FAMILIES)
    assert not unknown, f"{where}: {sorted(unknown)} are not exported by kubetfx"
    allowed = GROUP_LABELS | {label for name in names for label in FAMILIES[name].labels}
    stray = _labels_used(expr) - allowed
    assert not stray, f"{where}: labels {sorted(stray)} are on none of {sorted(names)}"


def test_rules_name_only_exported_metrics_and_their_labels() -> None:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            _check_expr(rule["expr"], rule.get("alert") or rule["record"])
            for text in rule.get("annotations", {}).values():
                for label in re.findall(r"\$labels\.(\w+)", text):
                    names = METRIC.findall(rule["expr"])
                    assert label in GROUP_LABELS | {x for n in names for x in FAMILIES[n].labels}, (
                        rule["alert"],
                        label,
                    )


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = _panels(dashboard)
    queried = set()
    for panel in panels:
        for target in panel.get("targets", []):
            _check_expr(target["expr"], f"panel {panel['title']!r}")
            queried |= set(METRIC.findall(target["expr"]))
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        if panel["type"] != "alertlist":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        assert panel.get("description"), f"panel {panel['title']!r} says nothing of what it shows"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            _check_expr(variable["definition"].replace("label_values(", "").rstrip(")"), variable["name"])
    # Every family a platform team watches is on the dashboard (not the pipeline-level
    # timestamps, which only the alerts read; serving drift has its own row).
    wanted = {n for n in FAMILIES if not n.startswith("kubetfx_pipeline_")}
    missing = (
        wanted
        - queried
        - {
            "kubetfx_task_last_run_timestamp_seconds",
            "kubetfx_task_last_failure_timestamp_seconds",
            "kubetfx_examples_span",
            "kubetfx_data_skew_distance",
            "kubetfx_evaluation_examples",
            "kubetfx_evaluation_slice_examples",
            "kubetfx_model_pushed",
        }
    )
    assert not missing, f"exported but on no panel: {sorted(missing)}"


def test_the_dashboard_layout_is_sound() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    assert dashboard["uid"] == "kubetfx-overview" and dashboard["schemaVersion"] >= 36
