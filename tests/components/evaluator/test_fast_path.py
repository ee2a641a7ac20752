"""The Evaluator's in-process metrics against TFMA's own run, on the same models and data.

Each case evaluates twice, once with ``engine="tfma"`` (TFMA's ``run_model_analysis``)
and once with ``engine="in-process"``, then compares every metric of every slice and
model, diffs against the baseline included, every plot, and the threshold validation.
Metrics must agree within 1e-6. Plots carry sums of raw predictions (a calibration
bucket's total prediction): those must agree within 1e-6 of their size, since the model
itself answers with float32 values that differ in the last bit between TFMA's batches and
ours (an absolute 1e-6 on a sum of a thousand predictions would test TensorFlow's
batching, not the metrics).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from kubetfx.components.evaluator import executor as evaluator
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

CASES = {
    # three classes, a baseline (diffs and a change threshold), a cross, two thresholds
    "multiclass_with_baseline": (
        "penguins",
        "good",
        "weak",
        {
            "label_key": "species",
            "slice_features": ["sex", "island"],
            "feature_crosses": [["sex", "island"]],
            "fairness_thresholds": [0.3, 0.5],
            "value_thresholds": {"accuracy": 0.5},
            "change_thresholds": {"accuracy": 0.05},
        },
    ),
    # predictions of exactly 0 and 1 (the histogram's edge buckets), a failing fairness gate
    "rule_model_edges": (
        "penguins",
        "unfair",
        "",
        {"label_key": "species", "slice_features": ["island"], "max_fairness_gap": 0.1},
    ),
    # a binary label: thresholds on AUC and FNR for the positive class
    "binary": (
        "adelie",
        "model",
        "",
        {
            "label_key": "adelie",
            "slice_features": ["sex", "island"],
            "fairness_thresholds": [0.5, 0.3],
            "value_thresholds": {"auc": 0.9, "fnr": 0.5},
        },
    ),
    # a binary rule model: a real FNR gap on hundreds of positives, a slice with two
    # positives (not gated), counts and intervals from TFMA's confusion counts
    "binary_fairness_counts": (
        "groups_gap",
        "model",
        "",
        {"label_key": "label", "slice_features": ["group"], "fairness_thresholds": [0.5, 0.7]},
    ),
}


def _flat(message) -> dict[str, object]:
    out: dict[str, object] = {}

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        else:
            out[path] = value

    walk(json_format.MessageToDict(message, preserving_proto_field_name=True), "")
    return out


def _load(evaluation: Path, kind: str) -> dict[tuple[str, str], dict[str, object]]:
    if kind == "metrics":
        protos, field = (
            writer.load_and_deserialize_metrics(str(evaluation / "metrics")),
            "metric_keys_and_values",
        )
    else:
        protos, field = writer.load_and_deserialize_plots(str(evaluation / "plots")), "plot_keys_and_values"
    out = {}
    for proto in protos:
        for kv in getattr(proto, field):
            key = (str(proto.slice_key), str(kv.key))
            assert key not in out, f"{kind}: {key} written twice"
            out[key] = _flat(kv.value)
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    return None


def _compare(reference: Path, ours: Path, kind: str) -> int:
    theirs, mine = _load(reference, kind), _load(ours, kind)
    assert theirs, f"TFMA wrote no {kind}"
    assert set(mine) == set(theirs), f"{kind} keys differ: {sorted(set(mine) ^ set(theirs))[:5]}"
    compared = 0
    for key, fields in theirs.items():
        assert set(mine[key]) == set(fields), f"{kind} {key}: fields differ"
        for name, value in fields.items():
            a, b = _number(value), _number(mine[key][name])
            if a is None:
                assert mine[key][name] == value, f"{kind} {key} {name}: {mine[key][name]!r} != {value!r}"
                continue
            assert b is not None
            compared += 1
            if not (math.isfinite(a) and math.isfinite(b)):
                assert a == b or (math.isnan(a) and math.isnan(b)), f"{kind} {key} {name}: {b} vs TFMA {a}"
                continue
            tolerance = 1e-6 if kind == "metrics" else 1e-6 * max(1.0, abs(a))
            assert abs(a - b) <= tolerance, f"{kind} {key} {name}: {b} vs TFMA {a}"
    return compared


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_in_process_metrics_equal_tfma(case: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    data_name, model, baseline, kwargs = CASES[case]
    data = request.getfixturevalue(data_name)
    settings = evaluator.EvalSettings(**kwargs)
    results = {}
    for engine in ("tfma", "in-process"):
        results[engine] = evaluator.run(
            data["examples"],
            data[model],
            str(tmp_path / engine / "evaluation"),
            str(tmp_path / engine / "blessing"),
            settings,
            baseline_model_dir=data[baseline] if baseline else "",
            engine=engine,
        )
    tfma_result, ours = results["tfma"], results["in-process"]
    assert (tfma_result.engine, ours.engine) == ("tfma", "in-process")

    compared = sum(
        _compare(tmp_path / "tfma/evaluation", tmp_path / "in-process/evaluation", k)
        for k in ("metrics", "plots")
    )
    assert compared > 1000
    assert tfma.load_validation_result(
        str(tmp_path / "in-process/evaluation")
    ) == tfma.load_validation_result(str(tmp_path / "tfma/evaluation"))
    # TFMA's own loader reads our output as an evaluation result.
    loaded = tfma.load_eval_result(str(tmp_path / "in-process/evaluation"))
    assert len(loaded.slicing_metrics) == len(tfma_result.slices)
    # ... and so the verdict, its reasons and the per-slice table are the same.
    assert ours.blessed == tfma_result.blessed
    assert ours.reasons == tfma_result.reasons
    assert ours.confusion == tfma_result.confusion
    assert [r.slice for r in ours.slices] == [r.slice for r in tfma_result.slices]
    for mine, theirs in zip(ours.slices, tfma_result.slices, strict=True):
        assert mine.example_count == theirs.example_count
        assert mine.metrics.keys() == theirs.metrics.keys()
        for name, value in theirs.metrics.items():
            assert math.isclose(mine.metrics[name], value, abs_tol=1e-6) or (
                math.isnan(value) and math.isnan(mine.metrics[name])
            ), (mine.slice, name)
        # The gated metrics' counts are TFMA's confusion counts: equal, so the intervals are.
        assert mine.estimates == theirs.estimates, mine.slice
        assert mine.estimates and all(e.denominator > 0 for e in mine.estimates.values())
    assert ours.fairness == tfma_result.fairness
    if case == "binary_fairness_counts":  # the gate acted on the counts, in both engines
        assert not tfma_result.blessed and tfma_result.fairness["group"]["significant"]
        assert tfma_result.fairness["group"]["not_gated_counts"] == {"group=c": 2}


def test_what_the_in_process_path_cannot_do_falls_back_to_tfma(penguins, tmp_path: Path) -> None:
    # Slicing on a float feature (a slice per distinct value) is left to TFMA.
    settings = evaluator.EvalSettings(label_key="species", slice_features=["bill_length_mm"])
    result = evaluator.run(
        penguins["examples"],
        penguins["good"],
        str(tmp_path / "auto/evaluation"),
        str(tmp_path / "auto/blessing"),
        settings,
    )
    assert result.engine == "tfma" and "non-integer" in result.engine_note
    assert result.metadata()["engine"] == "tfma"
    with pytest.raises(
        evaluator.EvaluationError, match="in-process metrics cannot evaluate this: .*non-integer"
    ):
        evaluator.run(
            penguins["examples"],
            penguins["good"],
            str(tmp_path / "strict/evaluation"),
            str(tmp_path / "strict/blessing"),
            settings,
            engine="in-process",
        )
