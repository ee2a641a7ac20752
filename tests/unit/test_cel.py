"""The CEL subset the KFP compiler writes for dsl.If/Elif/Else."""

from __future__ import annotations

import pytest

from kubetfx.errors import UnsupportedLocallyError
from kubetfx.local.cel import evaluate

P = "inputs.parameter_values['pipelinechannel--x']"


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        (f"{P} == 'heads'", "heads", True),
        (f"!({P} == 'heads') && {P} == 'edge'", "edge", True),
        (f"!({P} == 'heads') && !({P} == 'edge')", "heads", False),
        (f"int({P}) > 2", 3, True),
        (f"int({P}) <= 2", "2", True),
        (f"double({P}) >= 0.5", 0.25, False),
        (f"{P} == true", True, True),
        (f"{P} != 'a' || {P} == 'a'", "a", True),
    ],
)
def test_conditions(condition: str, value, expected: bool) -> None:
    assert evaluate(condition, {"pipelinechannel--x": value}) is expected


@pytest.mark.parametrize(
    "condition", ["size(x) > 1", f"{P}.startsWith('a')", "__import__('os')", f"{P} in [1]"]
)
def test_anything_else_is_refused(condition: str) -> None:
    with pytest.raises(UnsupportedLocallyError):
        evaluate(condition, {"pipelinechannel--x": "a"})
