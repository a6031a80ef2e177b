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


class _TooBig(Exception):
    """A value the interpreter will not make (a bound below)."""


# bounds, so that no expression hangs the collection (10**10**8, "x" * 10**12)
MAX_LENGTH = 10_000  # characters of an expression
MAX_NODES = 1_000  # nodes of its syntax tree
MAX_STEPS = 10_000  # nodes evaluated per pset
MAX_BITS = 1 << 16  # of an integer the arithmetic makes
MAX_ITEMS = 1 << 16  # of a string or list that * makes


class Selection:
    """A parsed ``--psweep-select`` expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_LENGTH:
            raise PsweepError(
                f"--psweep-select: the expression has {len(text)} characters, more than "
                f"{MAX_LENGTH}; select with a shorter one (ranges: 'a >= 1 and a <= 9')"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise PsweepError(f"--psweep-select {text!r}: not an expression ({exc.msg})") from None
        except (RecursionError, MemoryError):
            raise PsweepError(f"--psweep-select {text!r}: nested too deeply") from None
        self.names: set[str] = set()
        self._check(tree.body)
        self._body = tree.body
        self._steps = 0

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
        for count, child in enumerate(ast.walk(node)):
            if count >= MAX_NODES:
                raise PsweepError(
                    f"--psweep-select {self.text[:80]!r}...: more than {MAX_NODES} terms; "
                    "select with a shorter expression"
                )
            if not isinstance(child, allowed):
                raise PsweepError(
                    f"--psweep-select {self.text!r}: {type(child).__name__} is not allowed; "
                    "use parameter names, numbers, strings, comparisons, and/or/not, "
                    "in, arithmetic and lists"
                )
            if isinstance(child, ast.Name):
                self.names.add(child.id)

    def matches(self, pset: dict[str, Any]) -> bool:
        self._steps = 0
        try:
            return bool(self._eval(self._body, pset))
        except _Absent:
            return False
        except (_TooBig, RecursionError) as exc:
            raise PsweepError(
                f"--psweep-select {self.text!r} on pset {pset!r}: {exc or 'nested too deeply'}"
                "; select with smaller numbers (a comparison needs no huge power)"
            ) from None
        except Exception as exc:  # e.g. "a" < 1: the user's expression, this pset
            raise PsweepError(
                f"--psweep-select {self.text!r} on pset {pset!r}: {type(exc).__name__}: {exc}"
            ) from None

    def _eval(self, node: ast.AST, pset: dict[str, Any]) -> Any:
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise _TooBig(f"more than {MAX_STEPS} steps")
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
            _bounded(node.op, left, right)
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


def _bits(value: Any) -> int:
    """The size of an integer (bool too) in bits; 0 for anything else."""
    return abs(value).bit_length() if isinstance(value, int) else 0


def _bounded(op: ast.operator, left: Any, right: Any) -> None:
    """_TooBig if ``left op right`` would make a huge integer, string or list."""
    if isinstance(op, ast.Pow) and isinstance(right, int) and _bits(left) > 1:
        if right * _bits(left) > MAX_BITS:
            raise _TooBig(
                f"{_bits(left)}-bit ** {right} makes an integer of more than {MAX_BITS} bits"
            )
    elif isinstance(op, ast.Mult):
        if _bits(left) + _bits(right) > MAX_BITS:
            raise _TooBig(f"* makes an integer of more than {MAX_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list) and isinstance(times, int):
                if len(seq) * times > MAX_ITEMS:
                    raise _TooBig(f"* makes a {type(seq).__name__} of more than {MAX_ITEMS} items")
