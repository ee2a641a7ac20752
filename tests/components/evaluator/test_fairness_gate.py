"""The fairness gate on counts, on real TFMA metrics: ``min_slice_size`` applies to the
gated metric's own denominator, every slice's metric carries its counts and an exact
interval, and a gap blocks only when its interval lies wholly above ``max_fairness_gap``.

The data are written example by example (``write_groups``: per group, caught positives,
missed positives, negatives) and scored by a rule model, so every count is known.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from kubetfx.components.evaluator import executor as evaluator
from kubetfx.components.evaluator import intervals
from kubetfx.components.evaluator.report import evaluation_html
from scipy.stats import binomtest


def _run(examples: str, model: str, out: Path, **kwargs) -> evaluator.EvalResult:
    settings = evaluator.EvalSettings(label_key="label", slice_features=["group"], **kwargs)
    return evaluator.run(examples, model, str(out / "evaluation"), str(out / "blessing"), settings)


def _estimate(result: evaluator.EvalResult, name: str, metric: str) -> intervals.Estimate:
    [row] = [r for r in result.slices if r.slice == name]
    return row.estimates[metric]


def _exact(k: int, n: int) -> tuple[float, float]:
    """The independent reference: scipy's exact binomial interval (root finding on the CDF)."""
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return ci.low, ci.high


def test_a_slice_with_two_positives_never_blocks(write_groups, score_model, tmp_path: Path) -> None:
    # The case that blocked a good model: 3,002 examples, two positives, both missed.
    examples = write_groups({"a": (300, 0, 300), "c": (0, 2, 3000)})
    result = _run(examples, score_model, tmp_path / "default")
    assert result.blessed, result.reasons
    c = _estimate(result, "group=c", "fnr")
    assert (c.value, c.numerator, c.denominator, c.of) == (1.0, 2, 2, "positives")
    assert _estimate(result, "group=a", "fnr").value == 0.0
    assert next(r for r in result.slices if r.slice == "group=c").example_count == 3002
    [reason] = [r for r in result.reasons if r.startswith("fairness")]
    assert "fnr compares slices with >= 10 positives; only group=a (300 positives) has that many" in reason
    assert "not gated (fewer than 10 positives): group=c (2 positives)" in reason
    assert result.fairness["group"]["not_gated_counts"] == {"group=c": 2}

    # Even gated (min_slice_size 1), FNR 1.0 against 0.0 is no evidence of a gap over 0.2
    # with two positives: the exact interval of 2/2 reaches down to 0.158.
    result = _run(examples, score_model, tmp_path / "gated", min_slice_size=1)
    assert result.blessed, result.reasons
    entry = result.fairness["group"]
    assert entry["gap"] == 1.0 and entry["gap_interval"][0] < 0.2 and not entry["significant"]
    [reason] = [r for r in result.reasons if r.startswith("fairness")]
    assert "is over 0.2 but not shown to be" in reason and "2/2 positives" in reason, reason


def test_a_real_gap_between_hundreds_of_positives_blocks(write_groups, score_model, tmp_path: Path) -> None:
    examples = write_groups({"a": (300, 0, 300), "b": (150, 150, 300), "c": (0, 2, 3000)})
    result = _run(examples, score_model, tmp_path)
    assert not result.blessed
    [reason] = result.reasons
    a_low, a_high = _exact(0, 300)
    b_low, b_high = _exact(150, 300)
    assert reason.startswith(
        "fairness on group: fnr gap 0.500 between"
        f" group=a (0.000, 0/300 positives, 95% CI {a_low:.3f} to {a_high:.3f}) and"
        f" group=b (0.500, 150/300 positives, 95% CI {b_low:.3f} to {b_high:.3f}) exceeds 0.2: "
    ), reason
    assert reason.endswith("; not gated (fewer than 10 positives): group=c (2 positives)"), reason
    entry = result.fairness["group"]
    assert entry["significant"] and entry["gap_interval"][0] > 0.2
    assert (entry["low"], entry["high"]) == ("group=a", "group=b")
    # square-and-add from the two exact intervals
    assert entry["gap_interval"][0] == pytest.approx(0.5 - math.hypot(0.5 - b_low, a_high - 0.0), abs=1e-9)
    assert not re.search(r"\d\.\d{4,}", reason), "numbers are rounded for reading"
    # the report names the positive class and shows every slice's counts and interval
    page = evaluation_html(result, "Evaluation")
    assert "Positive class: <b>yes</b>" in page
    for counts in ("0/300 positives", "150/300 positives", "2/2 positives"):
        assert counts in page
    assert f"{b_low:.3f} to {b_high:.3f}" in page
    assert not re.search(r"\d\.\d{5,}", page)
    metadata = result.metadata()["fairness_estimates"]["group"]["group=c"]
    assert (metadata["numerator"], metadata["denominator"], metadata["of"]) == (2, 2, "positives")


def test_a_gap_over_the_limit_on_few_positives_is_reported_not_blocked(
    write_groups, score_model, tmp_path: Path
) -> None:
    # FNR 0.3 (6 of 20) against 0.0 (0 of 300): over 0.2, but 20 positives cannot show it.
    examples = write_groups({"a": (300, 0, 300), "d": (14, 6, 300)})
    result = _run(examples, score_model, tmp_path)
    assert result.blessed, result.reasons
    [reason] = [r for r in result.reasons if r.startswith("fairness")]
    assert (
        reason.startswith("fairness on group: fnr gap 0.300 between group=a") and "6/20 positives" in reason
    )
    assert "is over 0.2 but not shown to be" in reason and "not blocked" in reason
    # ... and the same rates on ten times the positives block.
    examples = write_groups({"a": (300, 0, 300), "d": (140, 60, 300)})
    result = _run(examples, score_model, tmp_path / "more")
    assert not result.blessed and "60/200 positives" in result.reasons[0]


def test_min_slice_size_counts_the_gated_metrics_denominator(
    write_groups, score_model, tmp_path: Path
) -> None:
    # Group c: 30 positives, all caught, and 5 negatives.
    examples = write_groups({"a": (300, 0, 300), "c": (30, 0, 5)})
    fpr = _run(examples, score_model, tmp_path / "fpr", fairness_metric="fpr")
    [reason] = [r for r in fpr.reasons if r.startswith("fairness")]
    assert "fpr compares slices with >= 10 negatives" in reason and "group=c (5 negatives)" in reason
    fnr = _run(examples, score_model, tmp_path / "fnr", fairness_metric="fnr", max_fairness_gap=0.0)
    assert fnr.fairness["group"]["gap"] == 0.0 and not fnr.fairness["group"]["not_gated"]
    # Only 5 predicted negatives in c: too few for the false omission rate.
    fo = _run(examples, score_model, tmp_path / "for", fairness_metric="false_omission_rate")
    [reason] = [r for r in fo.reasons if r.startswith("fairness")]
    assert "group=c (5 predicted negatives)" in reason
    examples = write_groups({"a": (300, 0, 300), "c": (0, 3, 300)})
    precision = _run(examples, score_model, tmp_path / "precision", fairness_metric="precision")
    [reason] = [r for r in precision.reasons if r.startswith("fairness")]
    assert "group=c (0 predicted positives)" in reason, reason


def test_counts_equal_the_data_and_intervals_the_exact_reference(
    write_groups, score_model, tmp_path: Path
) -> None:
    groups = {"a": (300, 0, 300), "b": (150, 150, 300), "c": (0, 2, 3000), "d": (14, 6, 41)}
    result = _run(write_groups(groups), score_model, tmp_path)
    checked = 0
    for name, (caught, missed, negatives) in groups.items():
        # At threshold 0.5 the rule catches score 90 only: tp, fn, fp, tn by design.
        tp, fn, fp, tn = caught, missed, 0, negatives
        expected = {
            "fnr": (fn, tp + fn),
            "tpr": (tp, tp + fn),
            "recall": (tp, tp + fn),
            "fpr": (fp, fp + tn),
            "tnr": (tn, fp + tn),
            "precision": (tp, tp + fp),
            "false_discovery_rate": (fp, tp + fp),
            "false_omission_rate": (fn, fn + tn),
            "accuracy": (tp + tn, tp + fn + fp + tn),
        }
        [row] = [r for r in result.slices if r.slice == f"group={name}"]
        for metric, (k, n) in expected.items():
            if n == 0:
                assert metric not in row.estimates
                continue
            e = row.estimates[metric]
            assert (e.numerator, e.denominator) == (k, n), (name, metric)
            # TFMA's own value of the metric is that ratio ...
            assert row.metrics[metric] == pytest.approx(k / n, abs=1e-6), (name, metric)
            # ... and the interval is the exact binomial one.
            assert (e.low, e.high) == pytest.approx(_exact(k, n), abs=1e-9), (name, metric)
            checked += 1
        auc = row.estimates["auc"]
        half = math.sqrt(math.log(2 / 0.05) / (2 * min(tp + fn, fp + tn)))
        assert (auc.low, auc.high) == pytest.approx((max(0.0, auc.value - half), min(1.0, auc.value + half)))
    assert checked > 30


def test_a_multiclass_model_is_not_gated_on_a_rate(penguins, tmp_path: Path) -> None:
    settings = evaluator.EvalSettings(label_key="species", slice_features=["island"], fairness_metric="fnr")
    with pytest.raises(evaluator.EvaluationError, match="'fnr' needs a binary label"):
        evaluator.run(
            penguins["examples"], penguins["good"], str(tmp_path / "e"), str(tmp_path / "b"), settings
        )


def test_accuracy_counts_equal_tfmas_confusion_matrix(penguins, tmp_path: Path) -> None:
    settings = evaluator.EvalSettings(label_key="species", slice_features=["island"])
    result = evaluator.run(
        penguins["examples"], penguins["unfair"], str(tmp_path / "e"), str(tmp_path / "b"), settings
    )
    accuracy = result.overall.estimates["accuracy"]
    assert accuracy.numerator == sum(result.confusion[i][i] for i in range(len(result.classes)))
    assert accuracy.denominator == sum(map(sum, result.confusion)) == result.overall.example_count
    assert (accuracy.low, accuracy.high) == pytest.approx(_exact(accuracy.numerator, accuracy.denominator))
    page = evaluation_html(result, "Evaluation")
    assert "one-vs-rest" in page and "Adelie, Chinstrap, Gentoo" in page
