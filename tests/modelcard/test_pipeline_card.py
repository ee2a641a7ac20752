"""The model card of a real run of the reference pipeline (3 epochs, ``island`` redacted, a
lighter load in the serving check):
valid against the Model Card Toolkit's schema, saying what lineage says; then, after a
rollback, a stepped rollout and aliases, ``kubetfx model-card`` draws it again with them."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import jsonschema
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.record import props, to_value

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/model_card/model_card.schema.json").read_text()
)
ISLANDS = ("Biscoe", "Dream", "Torgersen")


def _valid(document: dict) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    assert not [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def _artifact(store, kind: str) -> pb.Artifact:
    [found] = [a for a in store.mlmd.get_artifacts_by_type(kind) if a.state == pb.Artifact.LIVE]
    return found


def test_the_pipeline_card_is_valid_and_says_what_lineage_says(pipeline_run) -> None:
    assert re.search(r"^condition-\d+/model-card\s+SUCCEEDED", pipeline_run.stdout, re.MULTILINE), (
        pipeline_run.stdout
    )
    [path] = list((pipeline_run.folder / "root").rglob("model_card.json"))
    document = json.loads(path.read_text())
    _valid(document)

    store = pipeline_run.store
    pushed = props(_artifact(store, "kubetfx.PushedModel"))
    examples = props(_artifact(store, "system.Dataset"))
    evaluation = props(_artifact(store, "kubetfx.ModelEvaluation"))
    details = document["model_details"]
    assert (details["name"], details["version"]["name"], details["path"]) == (
        "penguins",
        "1",
        pushed["destination"],
    )
    assert details["version"]["date"] == pushed["pushed_at"][:10]

    # The data: one dataset per split, with its row count and the data's fingerprint.
    datasets = {d["name"]: d["description"] for d in document["model_parameters"]["data"]}
    assert set(datasets) == {f"{split} split" for split in examples["row_counts"]}
    for split, rows in examples["row_counts"].items():
        assert datasets[f"{split} split"].startswith(
            f"{int(rows)} rows of pkg://palmerpenguins/data/penguins.csv"
        )
        assert examples["fingerprint"] in datasets[f"{split} split"]
    roles = {f["key"]: f["value"] for f in document["model_parameters"]["input_format_map"]}
    assert roles["species"] == "label" and roles["bill_length_mm"] == "feature"

    # Every slice's metrics as the Evaluator recorded them; the fairness slices with intervals.
    metrics = {
        (m["type"], m.get("slice", "")): m for m in document["quantitative_analysis"]["performance_metrics"]
    }
    for slice_name, values in evaluation["slice_metrics"].items():
        key = "" if slice_name == "Overall" else slice_name
        assert abs(float(metrics[("accuracy", key)]["value"]) - values["accuracy"]) < 1e-3, slice_name
    female = metrics[("accuracy", "sex=female")]
    low, high = (float(female["confidence_interval"][k]) for k in ("lower_bound", "upper_bound"))
    assert low <= float(female["value"]) <= high
    for feature in ("sex", "island"):
        gap = metrics[("accuracy gap across slices", feature)]
        low, high = (float(gap["confidence_interval"][k]) for k in ("lower_bound", "upper_bound"))
        assert low <= float(gap["value"]) <= high
        assert abs(float(gap["value"]) - evaluation["fairness_gaps"][feature]) < 1e-3
    # The fairness slices drawn with their intervals: a PNG, as the schema's graphics hold it.
    [chart] = document["quantitative_analysis"]["graphics"]["collection"]
    assert base64.b64decode(chart["image"]).startswith(b"\x89PNG\r\n\x1a\n")
    gates = [t["description"] for t in document["considerations"]["tradeoffs"]]
    assert any(g.startswith("[passed] value:accuracy") for g in gates)

    # The serving check is what the Pusher recorded, no more.
    limitations = [x["description"] for x in document["considerations"].get("limitations", [])]
    assert int(pushed["load_requests"]) == 300  # the lighter load this test asked for
    in_server = pushed.get("serving_server") not in (None, "", "in-process")
    assert any("not checked in a model server" in x for x in limitations) is not in_server
    where = f"serving check ({pushed['serving_server']})" if pushed.get("serving_server") else "serving check"
    for quantile in ("p50", "p95"):
        shown = float(metrics[(f"latency {quantile} ms", where)]["value"])
        assert (
            abs(shown - pushed[f"latency_{quantile}_ms"]) <= 0.001 * pushed[f"latency_{quantile}_ms"] + 1e-6
        )
    if in_server:  # KServe's model server ran the check: its figures, SLO and prediction match
        overview = document["model_details"]["documentation"]
        assert f"Serving check: checked in {pushed['serving_server']} over" in overview
        assert f"{int(pushed['load_requests'])} requests at concurrency" in overview

    # The HTML card is the task's HTML output, recorded where the Kubeflow UI reads it.
    [report] = [
        a
        for a in store.mlmd.get_artifacts_by_type("system.HTML")
        if "model-card" in a.uri and a.state == pb.Artifact.LIVE
    ]
    assert report.uri.endswith("/report.html")
    page = Path(report.uri).read_text()
    assert page.startswith("<!doctype html>") and "Model card: penguins version 1" in page
    assert "Evaluation per slice" in page and "Fairness" in page

    # A redacted feature's values are in neither the JSON nor the page.
    for text in (path.read_text(), page):
        assert not [name for name in ISLANDS if name in text]
        assert "island=#" in text


def _rollout(store, canary: int, stable: int) -> int:
    """A ``kubetfx.Rollout`` as the stepped canary records one that rolled back."""
    execution = pb.Execution(type_id=store.type_id("execution", "kubetfx.Rollout"))
    now = time.time()
    steps = [
        {
            "percent": 5,
            "started_at": now - 90,
            "decided_at": now - 60,
            "decision": "hold",
            "canary_error_rate": 0.0,
            "stable_error_rate": 0.0,
            "canary_p95_ms": 11.0,
            "stable_p95_ms": 10.0,
            "reason": "within limits",
        },
        {
            "percent": 25,
            "started_at": now - 60,
            "decided_at": now,
            "decision": "rollback",
            "canary_error_rate": 0.05,
            "stable_error_rate": 0.0,
            "canary_p95_ms": 12.0,
            "stable_p95_ms": 10.0,
            "reason": "error rate 0.05 > 0.01",
        },
    ]
    facts = {
        "model_name": "penguins",
        "canary_version": canary,
        "stable_version": stable,
        "state": "rolled_back",
        "reason": "canary error rate 0.05 over the limit at 25%",
        "steps": json.dumps(steps),
        "started_at": now - 90,
        "finished_at": now,
    }
    for name, value in facts.items():
        to_value(value, execution.custom_properties[name])
    [execution_id] = store.call(store.mlmd.put_executions, [execution])
    return int(execution_id)


def test_the_cli_card_shows_later_rollouts_and_aliases(pipeline_run, tmp_path: Path) -> None:
    # Version 2: version 1's files published again by a rollback (a real push record).
    rolled = pipeline_run.cli("rollback", "penguins", "--to", "1")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert (
        pipeline_run.cli("promote", "penguins:1", "--alias", "production", "--reason", "reviewed").returncode
        == 0
    )
    assert pipeline_run.cli("promote", "penguins:2", "--alias", "candidate").returncode == 0
    rollout = _rollout(pipeline_run.store, canary=2, stable=1)

    out = tmp_path / "card"
    made = pipeline_run.cli("model-card", "penguins:production", "--out", str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Model card: penguins version 1: wrote" in made.stdout
    document = json.loads((out / "model_card.json").read_text())
    _valid(document)
    text = document["model_details"]["documentation"]
    assert "alias held now: production" in text and "(reviewed)" in text
    assert f"rollout {rollout} (canary 2, stable 1): rolled_back" in text
    assert "version 2: rollback to version 1 at" in text
    metrics = {
        (m["type"], m.get("slice", "")): m["value"]
        for m in document["quantitative_analysis"]["performance_metrics"]
    }
    assert metrics[("canary error rate", f"rollout {rollout} step 25%")] == "0.05"
    page = (out / "model_card.html").read_text()
    assert "production" in page and "rolled_back" in page and "this version: stable" in page

    # The canary's own card: a rollback push, its rollout rolled back, the evaluation of its model.
    canary = pipeline_run.cli("model-card", "penguins:candidate", "--out", str(tmp_path / "canary"))
    assert canary.returncode == 0, canary.stdout + canary.stderr
    document = json.loads((tmp_path / "canary/model_card.json").read_text())
    _valid(document)
    assert "rollback to version 1" in document["model_details"]["overview"]
    assert "rollout: rolled_back" in (tmp_path / "canary/model_card.html").read_text()
    # And the alias cannot move onto the version its canary analysis rolled back.
    refused = pipeline_run.cli("promote", "penguins:2", "--alias", "production")
    assert refused.returncode == 2 and "rolled back by its canary analysis" in refused.stderr
