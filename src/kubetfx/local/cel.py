"""Evaluate the CEL conditions that the KFP compiler writes for ``dsl.If``/``Elif``/``Else``.

The compiler emits a small subset of CEL: ``inputs.parameter_values['NAME']``,
literals, comparisons, ``&&``, ``||``, ``!``, parentheses and ``int()``/``double()``/
``string()`` casts. This module translates exactly that subset into a Python
expression tree and evaluates it with no builtins; anything else is rejected when the
pipeline is loaded, before the run starts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from kubetfx.errors import UnsupportedLocallyError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<param>inputs\.parameter_values\[(?P<q>['"])(?P<name>.*?)(?P=q)\])
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<num>\d+\.\d*|\d+)
  | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|,|\+|-)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_OPS = {"&&": " and ", "||": " or ", "!": " not "}
_FUNCS = {"int": "_int", "double": "_float", "string": "_str"}
_LITERALS = {"true": "True", "false": "False", "null": "None"}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Subscript,
    ast.BinOp,
    ast.Add,
    ast.Sub,
)


def _to_int(value: Any) -> int:
    return int(float(value)) if isinstance(value, str) and "." in value else int(value)


def translate(condition: str) -> str:
    """CEL text -> Python expression text, or UnsupportedLocallyError."""
    out: list[str] = []
    pos = 0
    while pos < len(condition):
        match = _TOKEN.match(condition, pos)
        if not match:
            raise UnsupportedLocallyError(
                f"condition {condition!r} uses CEL syntax the local runner does not support "
                f"(at character {pos + 1})"
            )
        pos = match.end()
        kind = match.lastgroup if match.lastgroup not in ("q", "name") else "param"
        text = match.group(0)
        if match.group("param"):
            out.append(f"P[{match.group('name')!r}]")
        elif kind == "ws":
            out.append(" ")
        elif kind == "op":
            out.append(_OPS.get(text, text))
        elif kind == "ident":
            if text in _LITERALS:
                out.append(_LITERALS[text])
            elif text in _FUNCS:
                out.append(_FUNCS[text])
            else:
                raise UnsupportedLocallyError(
                    f"condition {condition!r} uses {text!r}, which the local runner does not support"
                )
        else:
            out.append(text)
    expression = "".join(out).strip()
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise UnsupportedLocallyError(f"cannot read condition {condition!r}: {err.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise UnsupportedLocallyError(
                f"condition {condition!r} is not supported locally ({type(node).__name__})"
            )
    return expression


def evaluate(condition: str, parameters: Mapping[str, Any]) -> bool:
    """Evaluate a KFP trigger condition against a task's resolved input parameters."""
    expression = translate(condition)
    namespace = {"P": parameters, "_int": _to_int, "_float": float, "_str": str}
    return bool(eval(compile(expression, "<condition>", "eval"), {"__builtins__": {}}, namespace))  # noqa: S307
