"""The Evaluator on real TFMA and TensorFlow: slices, thresholds against a baseline,
the fairness gate, a binary label, and clear errors for bad settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from kubetfx.components.evaluator import executor as evaluator
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.trainer import executor as trainer

from kubetfx.fingerprint import local_path
from kubetfx.reports import evaluation_html

CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"
RULE_MODULE = str(Path(__file__).with_name("rule_model.py"))


def _prepare(root: Path, source: str, label: str, schema_file: str = "") -> dict[str, str]:
    example_gen.run(source, str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    schema_gen.run(str(root / "statistics"), str(root / "schema"), schema_file=schema_file, label_key=label)
    return {k: str(root / k) for k in ("examples", "statistics", "schema")}


def _train(data: dict[str, str], model_dir: Path, label: str, **kwargs) -> str:
    trainer.run(
        data["examples"], data["schema"], data["statistics"], str(model_dir), label_key=label, **kwargs
    )
    return str(model_dir)


@pytest.fixture(scope="module")
def penguins(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("penguins")
    data = _prepare(root, "pkg://palmerpenguins/data/penguins.csv", "species", CURATED)
    hp = {
        "epochs": 15,
        "batch_size": 32,
        "learning_rate": 0.01,
        "hidden_units": [16],
        "dropout": 0.0,
        "seed": 1,
    }
    data["good"] = _train(data, root / "good", "species", hyperparameters=hp)
    weak = {**hp, "epochs": 1, "learning_rate": 1e-5}
    data["weak"] = _train(data, root / "weak", "species", hyperparameters=weak)
    data["unfair"] = _train(data, root / "unfair", "species", module_file=RULE_MODULE)
    return data


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


def test_binary_label_gates_false_negative_rate(tmp_path: Path) -> None:
    source = tmp_path / "adelie.csv"
    with (
        open(local_path("pkg://palmerpenguins/data/penguins.csv")) as f,
        open(source, "w", newline="") as out,
    ):
        rows = list(csv.DictReader(f))
        writer = csv.DictWriter(out, [k for k in rows[0] if k != "species"] + ["adelie"])
        writer.writeheader()
        for row in rows:
            row["adelie"] = "yes" if row.pop("species") == "Adelie" else "no"
            writer.writerow(row)
    data = _prepare(tmp_path / "data", str(source), "adelie")
    hp = {
        "epochs": 10,
        "batch_size": 32,
        "learning_rate": 0.01,
        "hidden_units": [8],
        "dropout": 0.0,
        "seed": 1,
    }
    model = _train(data, tmp_path / "model", "adelie", hyperparameters=hp)
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
