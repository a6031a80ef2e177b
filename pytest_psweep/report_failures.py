"""The report's failures, grouped (issue 22.4): one group per outcome, exception
type and message with its varying numbers folded, so that 36 psets failing with
``simpson needs an even number of intervals, got 3`` (5, 7, ...) are one line:
``... got {n}``: 36 psets, with the parameter values they span and the list of
psets folded away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .params import is_missing

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_ID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{16,}\b")
LISTED = 200  # psets listed per group; the rest are counted
_SPAN = 12  # values of a parameter named per group


@dataclass
class FailureGroup:
    outcome: str
    message: str  # the first line of the errors, numbers folded
    psets: list[dict[str, str]] = field(default_factory=list)  # pset text, error
    count: int = 0
    values: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def spans(self) -> list[tuple[str, str]]:
        """(parameter, its values in this group) for the parameters it spans."""

        found = []
        for param, values in self.values.items():
            ordered = sorted(set(values), key=_order)
            shown = ", ".join(cell(v) for v in ordered[:_SPAN])
            more = len(ordered) - _SPAN
            found.append((param, shown + (f", ... ({more} more)" if more > 0 else "")))
        return found

    @property
    def hidden(self) -> int:
        return self.count - len(self.psets)


def fold(message: str, params: dict[str, Any]) -> str:
    """The first line of an error with each number written as ``{param}`` when a
    parameter has that value, else as ``#``, and ids (UUIDs, hashes) as ``…``."""

    first = message.strip().splitlines()[0] if message.strip() else "(no error message)"
    texts: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            texts.setdefault(str(value), name)
            texts.setdefault(cell(value), name)
    first = _ID.sub("…", first)  # row ids, hashes: one per pset
    return _NUMBER.sub(lambda m: "{" + texts[m[0]] + "}" if m[0] in texts else "#", first)


def group(rows: list[dict[str, Any]], params: list[str]) -> list[FailureGroup]:
    """Failed and crashed rows (dicts with ``_outcome``, ``_error``, the params) in
    groups, the largest first; each pset listed with its whole error."""

    groups: dict[tuple[str, str], FailureGroup] = {}
    for row in rows:
        error = str(row.get("_error") or "")
        values = {p: row[p] for p in params}
        key = (str(row["_outcome"]), fold(error, values))
        found = groups.setdefault(key, FailureGroup(*key))
        found.count += 1
        for param, value in values.items():
            found.values.setdefault(param, []).append(value)
        if len(found.psets) < LISTED:
            found.psets.append({"pset": pset_text(row, params), "error": error})
    return sorted(groups.values(), key=lambda g: (-g.count, g.outcome, g.message))


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return (0, value)
    return (1, str(value))


def cell(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def pset_text(row: Any, params: list[str]) -> str:
    return (
        ", ".join(f"{p}={cell(row[p])}" for p in params if not is_missing(row[p]))
        or "(no parameters)"
    )
