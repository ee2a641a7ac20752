"""What people read from lineage is the same text on every call: keys sorted, numbers rounded.

Lineage keeps dictionaries as protobuf structs, which come back in no fixed order; these
tests feed the same values in two orders and compare the text.
"""

from __future__ import annotations

import re

from kubetfx.lineage import audit
from kubetfx.lineage.graph import Node, _facts, stable, task_seconds, task_state

SLICES = {
    "Overall": {"examples": 69.0, "accuracy": 0.9855072463768116, "auc": 0.99},
    "sex=female": {"examples": 33.0, "accuracy": 0.9696969696969697, "auc": 0.98},
    "island=Dream": {"examples": 26.0, "accuracy": 1.0, "auc": 1.0},
    "island=Dream,sex=male": {"examples": 12.0, "accuracy": 1.0, "auc": 1.0},
}
GAPS = {"island": 0.19230769230769232, "sex": 0.030303030303030276}


def _record(slices: dict, gaps: dict, validation: dict) -> audit.AuditRecord:
    return audit.AuditRecord(
        model_name="penguins",
        version=1,
        destination="/serving/penguins",
        pushed_at="2026-11-23T12:00:00Z",
        push_kind="push",
        model={"artifact": 9, "uri": "/m", "metrics": {"val_loss": 0.123456789, "val_accuracy": 1.0}},
        run={"run_id": "r", "pipeline": "p", "started": ""},
        trainer={"execution": 5, "hyperparameters": {"epochs": 30.0, "learning_rate": 0.0012345678}},
        data={"row_counts": {"train": 275.0, "eval": 69.0}},
        schema={},
        validation=validation,
        evaluation={"execution": 7, "slices": slices, "fairness_gaps": gaps, "settings": {"b": 1, "a": 2}},
        blessing={"blessed": True, "reasons": []},
        baseline={},
        serving_check={},
    )


def _reversed(mapping: dict) -> dict:
    return {k: _reversed(v) if isinstance(v, dict) else v for k, v in reversed(list(mapping.items()))}


def test_the_audit_is_the_same_whatever_order_lineage_returns() -> None:
    validation = {"execution": 4, "state": "COMPLETE", "anomaly_count": 0, "valid": True}
    first = _record(SLICES, GAPS, validation)
    second = _record(_reversed(SLICES), _reversed(GAPS), _reversed(validation))
    assert audit.to_markdown(first) == audit.to_markdown(second)
    assert audit.to_html(first) == audit.to_html(second)
    text = audit.to_markdown(first)
    # Rows: overall first, then single features, then crosses; columns sorted.
    rows = [
        line.split(" | ")[0].lstrip("| ")
        for line in text.splitlines()
        if line.startswith("| island") or line.startswith("| Overall") or line.startswith("| sex")
    ]
    assert rows == ["Overall", "island=Dream", "sex=female", "island=Dream,sex=male"]
    assert "| slice | examples | accuracy | auc |" in text
    assert "| execution | 4 |\n| state | SUCCEEDED |\n| anomaly_count | 0 |" in text
    assert '"island": 0.1923, "sex": 0.0303' in text
    # Numbers to 4 significant digits, nested ones included.
    assert "0.001235" in text and "0.1235" in text and "| Overall | 69 | 0.9855 | 0.99 |" in text
    assert not re.search(r"\d\.\d*[1-9]\d{4}", text.replace("0.001235", "")), text


def test_lineage_facts_are_sorted_and_rounded() -> None:
    props = {"row_counts": {"train": 275.0, "eval": 69.0}, "metrics": {"val_loss": 0.123456789, "auc": 0.5}}
    one = Node(kind="artifact", id=1, type="system.Model", label="/m", state="LIVE", properties=props)
    other = Node(
        kind="artifact", id=1, type="system.Model", label="/m", state="LIVE", properties=_reversed(props)
    )
    assert _facts(one) == _facts(other)
    assert 'row_counts={"eval": 69, "train": 275}' in _facts(one)
    assert 'metrics={"auc": 0.5, "val_loss": 0.1235}' in _facts(one)
    assert stable([0.19230769230769232, 2.0, {"b": 1, "a": 1.5e-07}]) == [0.1923, 2, {"a": 1.5e-07, "b": 1}]


def test_ml_metadata_states_read_in_the_run_summarys_words() -> None:
    assert task_state("COMPLETE", {}) == "SUCCEEDED"
    assert task_state("CACHED", {}) == "CACHED"
    assert task_state("FAILED", {"error": "x"}) == "FAILED"
    assert (
        task_state("CANCELED", {"skipped_reason": "condition false: x", "task_state": "SKIPPED"}) == "SKIPPED"
    )
    assert (
        task_state("CANCELED", {"skipped_reason": "upstream task a failed", "task_state": "NOT_RUN"})
        == "NOT_RUN"
    )
    # Records from before the state name was kept: the reason says which.
    assert task_state("CANCELED", {"skipped_reason": "upstream task a failed"}) == "NOT_RUN"
    assert task_state("CANCELED", {"skipped_reason": "condition false: x"}) == "SKIPPED"
    assert task_seconds({"wall_seconds": 1.25, "start_time": 0.0, "end_time": 9.0}) == 1.25
    assert task_seconds({"start_time": 10.0, "end_time": 10.5}) == 0.5
    assert task_seconds({"start_time": 10.0}) is None
