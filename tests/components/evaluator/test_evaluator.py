"""The Evaluator on real TFMA and TensorFlow: slices, thresholds against a baseline,
the fairness gate, a binary label, and clear errors for bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp import dsl
from kubetfx.components.evaluator import executor as evaluator
from kubetfx.components.evaluator import outputs
from kubetfx.components.evaluator.report import evaluation_html


def _settings(**kwargs) -> evaluator.EvalSettings:
    base = {"label_key": "species", "slice_features": ["sex", "island"], "min_slice_size": 10}
    return evaluator.EvalSettings(**{**base, **kwargs})


def _evaluate(
    data: dict[str, str], model: str, out: Path, settings: evaluator.EvalSettings, baseline: str = ""
):
    return evaluator.run(
        data["examples"],
        model,
        str(out / "evaluation"),
        str(out / "blessing"),
        settings,
        baseline_model_dir=baseline,
    )


def test_good_model_without_baseline_is_blessed_with_slices(penguins, tmp_path: Path) -> None:
    settings = _settings(feature_crosses=[["sex", "island"]], value_thresholds={"accuracy": 0.8})
    result = _evaluate(penguins, penguins["good"], tmp_path, settings)
    assert result.blessed, result.reasons
    assert (tmp_path / "blessing/BLESSED").exists() and not (tmp_path / "blessing/NOT_BLESSED").exists()
    assert json.loads((tmp_path / "blessing/reasons.json").read_text()) == result.reasons
    names = [r.slice for r in result.slices]
    assert names[0] == "Overall" and "sex=female" in names and "island=Dream" in names
    assert any(" & " in n for n in names), names  # the cross
    assert result.overall.example_count == sum(
        r.example_count for r in result.slices if r.feature == "island"
    )
    assert result.overall.metrics["accuracy"] >= 0.8
    assert {"macro_auc", "macro_precision", "macro_recall"} <= set(result.overall.metrics)
    # Torgersen has Adelie penguins only: no class there has both positives and negatives,
    # so there is no AUC to average (never a misleading 0).
    [torgersen] = [r for r in result.slices if r.slice == "island=Torgersen"]
    assert "macro_auc" not in torgersen.metrics and torgersen.metrics["accuracy"] > 0.5
    assert any("no baseline" in r for r in result.reasons)
    assert set(result.fairness) == {"sex", "island"} and result.fairness_metric == "accuracy"
    assert sum(map(sum, result.confusion)) == result.overall.example_count
    summary = json.loads((tmp_path / "evaluation/summary.json").read_text())
    assert summary["blessed"] is True and summary["slices"][0]["slice"] == "Overall"
    assert list((tmp_path / "evaluation").glob("metrics*")), "TFMA's own output is kept"
    page = evaluation_html(result, "Evaluation")
    assert "BLESSED" in page and "island=Dream" in page and "<script" not in page
    _check_published(result, tmp_path / "published")


def _check_published(result: evaluator.EvalResult, out: Path) -> None:
    """What the component's body hands KFP: metadata, report, UI metrics, parameters."""
    out.mkdir(parents=True, exist_ok=True)
    made = {n: dsl.Artifact(uri=str(out / n), metadata={}) for n in ("evaluation", "blessing", "report")}
    metrics, matrix = (
        dsl.Metrics(uri=str(out / "m"), metadata={}),
        dsl.ClassificationMetrics(uri=str(out / "c")),
    )
    blessed, accuracy, reason = outputs.publish(
        result,
        **made,
        metrics=metrics,
        classification_metrics=matrix,
        model_name="penguins",
        model_uri="/models/1",
        baseline_model_uri="",
        baseline_model_id=0,
    )
    assert (blessed, accuracy, reason) == (True, result.overall.metrics["accuracy"], "")
    assert made["evaluation"].metadata["kubetfx_type"] == "kubetfx.ModelEvaluation"
    assert made["evaluation"].metadata["model_uri"] == "/models/1"
    assert made["blessing"].metadata["kubetfx_type"] == "kubetfx.ModelBlessing"
    assert (
        made["blessing"].metadata["blessed"] == 1 and made["blessing"].metadata["reasons"] == result.reasons
    )
    assert (
        made["report"].uri.endswith(".html")
        and "Evaluation of penguins" in Path(made["report"].path).read_text()
    )
    assert metrics.metadata["blessed"] == 1.0 and metrics.metadata["accuracy"] == pytest.approx(
        accuracy, abs=1e-6
    )
    assert matrix.metadata["confusionMatrix"]["rows"]


def test_settings_from_the_component_parameters() -> None:
    def settings(**changed) -> evaluator.EvalSettings:
        parameters = {
            "label_key": "species",
            "slice_features": ["sex"],
            "feature_crosses": ["sex,island"],
            "fairness_thresholds": [0.7, "0.5"],
            "min_accuracy": 0.8,
            "max_accuracy_drop": 0.02,
            "value_thresholds": {"auc": "0.9"},
            "change_thresholds": {},
            "fairness_metric": "",
            "max_fairness_gap": 0.2,
            "min_slice_size": 10,
        }
        return evaluator.EvalSettings.from_parameters(**{**parameters, **changed})

    given = settings()
    assert given.feature_crosses == [["sex", "island"]]
    assert given.fairness_thresholds == [0.5, 0.7]
    assert given.value_thresholds == {"accuracy": 0.8, "auc": 0.9}
    assert given.change_thresholds == {"accuracy": 0.02}
    no_minimum = settings(min_accuracy=0.0, value_thresholds={}, change_thresholds={"auc": 0.1})
    assert no_minimum.value_thresholds == {}
    assert no_minimum.change_thresholds == {"accuracy": 0.02, "auc": 0.1}


def test_weakened_model_is_not_blessed_against_the_baseline(penguins, tmp_path: Path) -> None:
    result = _evaluate(
        penguins,
        penguins["weak"],
        tmp_path,
        _settings(change_thresholds={"accuracy": 0.02}),
        baseline=penguins["good"],
    )
    assert not result.blessed
    assert (tmp_path / "blessing/NOT_BLESSED").exists()
    [reason] = [r for r in result.reasons if "baseline" in r or "change" in r]
    assert reason.startswith("accuracy change vs baseline on Overall"), reason
    assert result.overall.baseline["accuracy"] > result.overall.metrics["accuracy"]


def test_same_model_as_baseline_passes_the_change_threshold(penguins, tmp_path: Path) -> None:
    result = _evaluate(
        penguins,
        penguins["good"],
        tmp_path,
        _settings(change_thresholds={"accuracy": 0.02}),
        baseline=penguins["good"],
    )
    assert result.blessed, result.reasons
    assert any("vs baseline" in r for r in result.reasons)


def test_unfair_model_is_not_blessed_and_the_reason_names_feature_slices_and_gap(
    penguins, tmp_path: Path
) -> None:
    result = _evaluate(penguins, penguins["unfair"], tmp_path, _settings(max_fairness_gap=0.1))
    assert not result.blessed
    [reason] = result.reasons
    assert reason.startswith("fairness on island: accuracy gap ") and "island=Dream" in reason, reason
    assert "exceeds 0.1" in reason
    assert result.fairness["island"]["gap"] > 0.1 and result.fairness["island"]["low"] == "island=Dream"


def test_small_slices_are_reported_not_gated(penguins, tmp_path: Path) -> None:
    result = _evaluate(penguins, penguins["unfair"], tmp_path, _settings(min_slice_size=1000))
    assert result.blessed, result.reasons
    assert "island=Dream" in result.fairness["island"]["not_gated"]


def test_binary_label_gates_false_negative_rate(adelie, tmp_path: Path) -> None:
    data, model = adelie, adelie["model"]
    settings = _settings(
        label_key="adelie",
        slice_features=["sex"],
        fairness_thresholds=[0.5, 0.3],
        value_thresholds={"auc": 0.9},
    )
    result = _evaluate(data, model, tmp_path / "out", settings)
    assert result.binary and result.fairness_metric == "fnr"
    assert {"auc", "precision", "recall", "fnr", "fpr", "fnr@0.3", "fnr@0.5"} <= set(result.overall.metrics)
    assert result.overall.metrics["auc"] > 0.9
    assert result.blessed, result.reasons


def test_bad_settings_are_named(penguins, tmp_path: Path) -> None:
    with pytest.raises(evaluator.EvaluationError, match=r"slice feature\(s\) \['colour'\] not found"):
        _evaluate(penguins, penguins["good"], tmp_path, _settings(slice_features=["colour"]))
    with pytest.raises(evaluator.EvaluationError, match="unknown metric 'f1'"):
        _settings(value_thresholds={"f1": 0.5})
    with pytest.raises(evaluator.EvaluationError, match=r"thresholds on \['auc'\] need a binary label"):
        _evaluate(penguins, penguins["good"], tmp_path, _settings(value_thresholds={"auc": 0.5}))
    with pytest.raises(evaluator.EvaluationError, match="cannot call its 'serving_default' signature"):
        (tmp_path / "broken/Format-Serving").mkdir(parents=True)
        _evaluate(penguins, str(tmp_path / "broken"), tmp_path, _settings())


def test_redacted_slice_values_stay_out_of_reports_reasons_and_lineage(
    penguins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBETFX_REDACT_FEATURES", "island")
    settings = _settings(slice_features=["island"], feature_crosses=[["sex", "island"]], max_fairness_gap=0.0)
    result = _evaluate(penguins, penguins["unfair"], tmp_path, settings)
    islands = [r.slice for r in result.slices if r.feature == "island"]
    assert len(islands) == 3 and all(s.startswith("island=#") for s in islands)
    html = evaluation_html(result, "Evaluation", "")
    shown = json.dumps(result.metadata()) + json.dumps(result.reasons) + html
    shown += (tmp_path / "evaluation/summary.json").read_text()
    for raw in ("Biscoe", "Dream", "Torgersen"):
        assert raw not in shown
    # the gate still names the slices it compared, by their stand-ins
    assert any("island=#" in reason for reason in result.reasons if "exceeds" in reason)
    # other features are shown as they are
    crossed = [r.slice for r in result.slices if "&" in r.feature]
    assert crossed and all("island=#" in s and "sex=" in s for s in crossed)
    assert any("sex=female" in s for s in crossed)
