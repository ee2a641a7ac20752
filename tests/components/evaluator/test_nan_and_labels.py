"""The Evaluator on a model whose predictions are NaN (a diverged training) and on an
eval split where some examples have no label: both engines, real TensorFlow and TFMA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubetfx.components.evaluator import executor as evaluator
from kubetfx.components.evaluator.report import evaluation_html
from tensorflow.core.example import example_pb2

from kubetfx.artifacts.examples import first_records


def _refuse_bare_constants(token: str) -> None:
    raise ValueError(f"bare {token} in JSON")


def _eval_examples(examples_dir: str) -> list[example_pb2.Example]:
    return [example_pb2.Example.FromString(r) for r in first_records(examples_dir, "eval", 10**6)]


def _has_label(example: example_pb2.Example, key: str) -> bool:
    return bool(example.features.feature[key].bytes_list.value)


def _long_flippers(examples: list[example_pb2.Example]) -> int:
    """Labelled examples whose flipper is over 206 mm: where the NaN model answers NaN."""
    return sum(
        1
        for e in examples
        if _has_label(e, "species")
        and any(v > 206 for v in e.features.feature["flipper_length_mm"].int64_list.value)
    )


def _run(data: dict[str, str], model: str, out: Path, engine: str, baseline: str = "", **kwargs):
    settings = evaluator.EvalSettings(
        label_key="species", slice_features=["island"], min_slice_size=10, **kwargs
    )
    return evaluator.run(
        data["examples"],
        model,
        str(out / "evaluation"),
        str(out / "blessing"),
        settings,
        baseline_model_dir=baseline,
        engine=engine,
    )


@pytest.mark.parametrize("engine", ["auto", "tfma"])
def test_a_diverged_model_is_not_blessed_with_a_clear_reason(
    penguins, nan_model: str, tmp_path: Path, engine: str
) -> None:
    examples = _eval_examples(penguins["examples"])
    nan_rows = _long_flippers(examples)
    assert 0 < nan_rows < len(examples)
    result = _run(penguins, nan_model, tmp_path, engine)
    assert not result.blessed
    [reason] = result.reasons
    assert f"NaN or infinite on {nan_rows} of {len(examples)} labelled eval examples" in reason, reason
    assert "training diverged" in reason and "learning rate" in reason
    assert (tmp_path / "blessing/NOT_BLESSED").exists() and not (tmp_path / "blessing/BLESSED").exists()
    assert json.loads((tmp_path / "blessing/reasons.json").read_text()) == [reason]
    summary = json.loads(
        (tmp_path / "evaluation/summary.json").read_text(), parse_constant=_refuse_bare_constants
    )
    assert summary["non_finite_predictions"] == {"candidate": nan_rows}
    metadata = result.metadata()
    json.dumps(metadata, allow_nan=False)
    assert metadata["blessed"] == 0 and metadata["eval_examples"] == len(examples)
    assert metadata["non_finite_predictions"] == {"candidate": nan_rows}
    assert "NOT BLESSED" in evaluation_html(result, "Evaluation")
    assert dict(evaluator.metrics_for_ui(result)) == {"example_count": float(len(examples)), "blessed": 0.0}


def test_a_diverged_baseline_is_ignored_with_a_note(penguins, nan_model: str, tmp_path: Path) -> None:
    examples = _eval_examples(penguins["examples"])
    result = _run(penguins, penguins["good"], tmp_path, "auto", baseline=nan_model, max_fairness_gap=1.0)
    assert result.blessed, result.reasons
    [note] = [c for c in result.checks if c.name == "baseline"]
    assert note.passed and note.detail.startswith(f"baseline model {nan_model} ignored")
    assert f"NaN or infinite on {_long_flippers(examples)} of {len(examples)}" in note.detail
    assert "only the absolute thresholds apply" in note.detail
    assert not [c for c in result.checks if c.name.startswith("change:")]
    assert not result.overall.baseline and result.baseline_uri == ""
    assert result.metadata()["non_finite_predictions"] == {"baseline": _long_flippers(examples)}


@pytest.mark.parametrize("engine", ["auto", "tfma"])
def test_unlabelled_eval_examples_are_left_out_and_counted(unlabelled, tmp_path: Path, engine: str) -> None:
    examples = _eval_examples(unlabelled["examples"])
    missing = sum(1 for e in examples if not _has_label(e, "species"))
    assert 0 < missing < len(examples)
    result = _run(unlabelled, unlabelled["model"], tmp_path, engine)
    assert result.engine == ("in-process" if engine == "auto" else "tfma")
    labelled = len(examples) - missing
    assert result.eval_examples == labelled and result.unlabelled_examples == missing
    assert sum(map(sum, result.confusion)) == labelled  # no unlabelled example scored as an error
    [note] = [c for c in result.checks if c.name == "labels"]
    assert note.passed
    assert f"left out {missing} of {len(examples)} eval examples with no 'species' label" in note.detail
    assert f"evaluated on the other {labelled}" in note.detail
    metadata = result.metadata()
    assert metadata["unlabelled_examples"] == missing
    assert any(c["name"] == "labels" for c in metadata["checks"])
    summary = json.loads((tmp_path / "evaluation/summary.json").read_text())
    assert summary["unlabelled_examples"] == missing
    assert result.overall.metrics["accuracy"] > 0.5


def test_an_eval_split_without_any_label_is_an_error(penguins, tmp_path: Path) -> None:
    import tensorflow as tf

    examples = _eval_examples(penguins["examples"])
    split = tmp_path / "examples/Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as out:
        for example in examples:
            example.features.feature["species"].bytes_list.Clear()
            out.write(example.SerializeToString())
    expected = f"none of the {len(examples)} eval examples has a label 'species'"
    with pytest.raises(evaluator.EvaluationError, match=expected):
        _run({"examples": str(tmp_path / "examples")}, penguins["good"], tmp_path, "auto")
