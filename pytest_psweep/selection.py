"""``--psweep-select "omega > 1.5 and n == 32"``: psets chosen by their values.

The expression is parsed with ``ast`` and evaluated by a small interpreter of an
allow-list of nodes: comparisons (also chained, ``in``, ``not in``), ``and``, ``or``,
``not``, arithmetic, numbers, strings, None, True, False, tuples and lists, and
parameter names. Nothing else parses (no calls, attributes, subscripts, lambdas):
no code of the expression's author runs. A pset that lacks a parameter the
expression names does not match it.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from .errors import PsweepError

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


class _Absent(Exception):
    """The pset has no parameter of this name: it does not match."""


class Selection:
    """A parsed ``--psweep-select`` expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise PsweepError(f"--psweep-select {text!r}: not an expression ({exc.msg})") from None
        self.names: set[str] = set()
        self._check(tree.body)
        self._body = tree.body

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp,
            ast.And,
            ast.Or,
            ast.UnaryOp,
            ast.BinOp,
            ast.Compare,
            ast.Constant,
            ast.Name,
            ast.Load,
            ast.Tuple,
            ast.List,
            *_COMPARE,
            *_BINARY,
            *_UNARY,
        )
        for child in ast.walk(node):
            if not isinstance(child, allowed):
                raise PsweepError(
                    f"--psweep-select {self.text!r}: {type(child).__name__} is not allowed; "
                    "use parameter names, numbers, strings, comparisons, and/or/not, "
                    "in, arithmetic and lists"
                )
            if isinstance(child, ast.Name):
                self.names.add(child.id)

    def matches(self, pset: dict[str, Any]) -> bool:
        try:
            return bool(self._eval(self._body, pset))
        except _Absent:
            return False
        except Exception as exc:  # e.g. "a" < 1: the user's expression, this pset
            raise PsweepError(
                f"--psweep-select {self.text!r} on pset {pset!r}: {type(exc).__name__}: {exc}"
            ) from None

    def _eval(self, node: ast.AST, pset: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in pset:
                return pset[node.id]
            raise _Absent(node.id)
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(value, pset) for value in node.values)
            return any(self._eval(value, pset) for value in node.values)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, pset))
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, pset), self._eval(node.right, pset)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, pset)
            for op, comparator in zip(node.ops, node.comparators):
                right = self._eval(comparator, pset)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Tuple | ast.List):
            return [self._eval(element, pset) for element in node.elts]
        raise AssertionError(f"unchecked node {type(node).__name__}")  # _check allows no other
