"""The Evaluator on Beam (TFMA's ``run_model_analysis``, SDK workers in other processes)
equals the in-process engine: every metric and plot value of every slice within a
relative 1e-9, the same validation, verdict and fairness gaps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from kubetfx.components.evaluator import executor as evaluator
from kubetfx.components.example_gen import executor as example_gen
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writer

REL = 1e-9


def _values(evaluation: Path, kind: str) -> dict[tuple[str, str, str], Any]:
    """(slice, metric or plot key, field) -> value, from what the engine wrote."""
    if kind == "metrics":
        protos = writer.load_and_deserialize_metrics(str(evaluation / "metrics"))
        field = "metric_keys_and_values"
    else:
        protos = writer.load_and_deserialize_plots(str(evaluation / "plots"))
        field = "plot_keys_and_values"
    out: dict[tuple[str, str, str], Any] = {}

    def walk(value: Any, key: tuple[str, str], path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, key, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, key, f"{path}[{i}]")
        else:
            out[(*key, path)] = value

    for proto in protos:
        for kv in getattr(proto, field):
            as_dict = json_format.MessageToDict(kv.value, preserving_proto_field_name=True)
            walk(as_dict, (str(proto.slice_key), str(kv.key)), "")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or math.isclose(a, b, rel_tol=REL, abs_tol=0.0)
    return bool(a == b)


@pytest.fixture(scope="module")
def examples_dir(tables: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("beam-eval-examples"))
    example_gen.run(tables["csv"], out, splits="train:1,eval:1")
    return out


def test_evaluation_on_beam_workers_equals_the_in_process_engine(
    examples_dir: str, score_model: str, worker_pool: list[str], tmp_path: Path
) -> None:
    settings = evaluator.EvalSettings(
        label_key="label",
        slice_features=["group"],
        fairness_thresholds=[0.5, 0.3],
        value_thresholds={"auc": 0.6},
        min_slice_size=20,
    )
    results = {}
    for where, options in (("in", []), ("beam", worker_pool)):
        results[where] = evaluator.run(
            examples_dir,
            score_model,
            str(tmp_path / where / "evaluation"),
            str(tmp_path / where / "blessing"),
            settings,
            pipeline_options=options,
        )
    ours, theirs = results["in"], results["beam"]
    assert (ours.engine, theirs.engine) == ("in-process", "tfma")
    compared = 0
    for kind in ("metrics", "plots"):
        mine = _values(tmp_path / "in" / "evaluation", kind)
        beam = _values(tmp_path / "beam" / "evaluation", kind)
        assert mine and sorted(beam) == sorted(mine), f"{kind}: keys differ"
        for key, value in mine.items():
            assert _same(value, beam[key]), f"{kind} {key}: Beam {beam[key]!r}, in-process {value!r}"
            compared += 1
    assert compared > 1000
    assert tfma.load_validation_result(str(tmp_path / "beam" / "evaluation")) == tfma.load_validation_result(
        str(tmp_path / "in" / "evaluation")
    )
    assert [r.slice for r in theirs.slices] == [r.slice for r in ours.slices] and len(ours.slices) == 4
    assert theirs.eval_examples == ours.eval_examples > 1000
    assert (theirs.blessed, theirs.reasons, theirs.fairness) == (ours.blessed, ours.reasons, ours.fairness)
    assert theirs.confusion == ours.confusion
