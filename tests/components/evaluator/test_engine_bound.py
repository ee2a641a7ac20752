"""The in-process metrics keep a few numbers per example: above a stated number of
examples (``KUBETFX_IN_PROCESS_MAX_ROWS``) the Evaluator goes to TFMA's Beam pipeline, and
refuses, naming the setting, when the in-process path was asked for by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubetfx.components.evaluator import engine
from kubetfx.components.evaluator import executor as evaluator

from kubetfx.errors import ConfigError

RULE_MODULE = str(Path(__file__).with_name("rule_model.py"))


@pytest.fixture(scope="module")
def rule_model(prepare_data, train_model) -> dict[str, str]:  # noqa: ANN001 - root fixtures
    prepared = prepare_data("pkg://palmerpenguins/data/penguins.csv", "species")
    return {**prepared.paths(), "model": train_model(prepared, "species", module_file=RULE_MODULE).path}


def test_above_the_limit_tfma_computes_and_in_process_is_refused(
    rule_model: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = evaluator.EvalSettings(label_key="species", slice_features=["island"])

    def run(name: str, engine_name: str) -> evaluator.EvalResult:
        return evaluator.run(
            rule_model["examples"],
            rule_model["model"],
            str(tmp_path / name / "evaluation"),
            str(tmp_path / name / "blessing"),
            settings,
            engine=engine_name,
        )

    below = run("below", "auto")
    assert below.engine == "in-process"
    monkeypatch.setenv(engine.MAX_ROWS_ENV, "50")  # the eval split holds about 115
    above = run("above", "auto")
    assert above.engine == "tfma" and engine.MAX_ROWS_ENV in above.engine_note
    assert above.eval_examples == below.eval_examples
    with pytest.raises(evaluator.EvaluationError, match=f"more than 50 examples \\({engine.MAX_ROWS_ENV}"):
        run("strict", "in-process")


def test_a_bad_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engine.MAX_ROWS_ENV, "lots")
    with pytest.raises(ConfigError, match=engine.MAX_ROWS_ENV):
        engine.max_rows()
    monkeypatch.setenv(engine.MAX_ROWS_ENV, "2_000_000")
    assert engine.max_rows() == 2_000_000
