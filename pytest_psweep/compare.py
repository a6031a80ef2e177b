"""Regression mode and look-ahead: a new row against the rows already in a database.

``baseline_index`` picks, per key (``_sweep``, ``_pset_hash``, ``_case_hash``), the
latest passed row;
``differences`` compares one pset's returned values with it, numbers within
tolerances; ``lookahead`` says per sweep how many psets are new, done, failed
before or done by other code.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .database import latest_passed, row_keys
from .names import RowKey
from .params import is_missing
from .tolerances import Tolerances as Tolerances
from .tolerances import describe as describe
from .tolerances import tolerances as tolerances

if TYPE_CHECKING:
    import pandas as pd


def baseline_index(
    database: pd.DataFrame | None,
) -> dict[RowKey, dict[str, Any]]:
    """The latest passed row per key (``database.row_keys``), as a dict."""
    latest = latest_passed(database)
    if latest is None:
        return {}
    return dict(zip(row_keys(latest), latest.to_dict("records")))


@dataclass
class Difference:
    key: str
    baseline: Any
    new: Any
    abs_diff: float | None = None
    rel_diff: float | None = None


def differences(
    baseline: dict[str, Any],
    new: dict[str, Any],
    keys: Iterable[str],
    ignore: Iterable[str],
    rtol: float,
    atol: float,
    per_key: Tolerances | None = None,
) -> list[Difference]:
    """Differences between a pset's returned values (``keys`` of ``new``) and its
    baseline row.

    The baseline's results are its columns except parameters and other ``ignore``d
    columns (e.g. what a row hook adds) and book-keeping (``_*``). A database cannot
    tell a returned NaN from a column a row never had, so a missing baseline value
    equals a missing (None/NaN) new one; otherwise a key on one side only is a
    difference. ``per_key``: tolerances of single keys, None for a key not compared
    (on either side).
    """
    per_key = per_key or {}
    skipped = {key for key, value in per_key.items() if value is None}
    keys = [key for key in keys if not key.startswith("_") and key not in skipped]
    ignored = set(ignore) | set(keys) | skipped
    found = []
    for key in keys:
        old = baseline.get(key)
        if is_missing(old):
            if not is_missing(new[key]):
                found.append(Difference(key, "<missing>", new[key]))
            continue
        key_rtol, key_atol = per_key.get(key) or (rtol, atol)
        diff = _compare(old, new[key], key_rtol, key_atol)
        if diff is not None:
            diff.key = key
            found.append(diff)
    for key, old in baseline.items():
        if key.startswith("_") or key in ignored or is_missing(old):
            continue
        found.append(Difference(key, old, "<missing>"))
    return found


def _is_number(value: Any) -> bool:
    """A number, not a bool (Python's or numpy's), which compares by equality."""
    if type(value).__name__ in ("bool", "bool_"):
        return False
    return isinstance(value, numbers.Number)


def _compare(old: Any, new: Any, rtol: float, atol: float) -> Difference | None:
    """None if equal within tolerance, else a Difference (key filled in by caller)."""
    if _is_number(old) and _is_number(new):
        if isinstance(old, complex) or isinstance(new, complex):
            close = abs(new - old) <= atol + rtol * abs(old)
        else:
            old_f, new_f = float(old), float(new)
            if math.isnan(old_f) and math.isnan(new_f):
                return None
            close = abs(new_f - old_f) <= atol + rtol * abs(old_f) or old_f == new_f
        if close:
            return None
        gap = abs(new - old)
        rel = gap / abs(old) if old else math.inf
        return Difference("", old, new, float(gap), float(rel))
    if _is_array(old) or _is_array(new):
        return _compare_arrays(old, new, rtol, atol)
    try:
        equal = bool(old == new)
    except Exception:
        equal = repr(old) == repr(new)
    return None if equal else Difference("", old, new)


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "shape")


def _compare_arrays(old: Any, new: Any, rtol: float, atol: float) -> Difference | None:
    import numpy as np

    old_a, new_a = np.asarray(old), np.asarray(new)
    if old_a.shape != new_a.shape:
        return Difference("", f"shape {old_a.shape}", f"shape {new_a.shape}")
    if old_a.dtype.kind in "iufc" and new_a.dtype.kind in "iufc":
        if np.allclose(new_a, old_a, rtol=rtol, atol=atol, equal_nan=True):
            return None
        gap = np.abs(new_a - old_a)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(old_a != 0, gap / np.abs(old_a), np.where(gap == 0, 0.0, np.inf))
        return Difference("", old, new, float(np.nanmax(gap)), float(np.nanmax(rel)))
    return None if np.array_equal(old_a, new_a) else Difference("", old, new)


def diff_table(found: list[Difference]) -> str:
    """A readable table: key, baseline, new, abs/rel difference."""
    header = ("key", "baseline", "new", "abs diff", "rel diff")
    rows = [
        (
            d.key,
            _short(d.baseline),
            _short(d.new),
            "" if d.abs_diff is None else f"{d.abs_diff:.3g}",
            "" if d.rel_diff is None else f"{d.rel_diff:.3g}",
        )
        for d in found
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


LOOKAHEAD = ("new", "done", "failed before", "other code")


def lookahead(database: Any, cases: Iterable[tuple[RowKey, str]]) -> dict[str, Counter[str]]:
    """Per sweep, how many cases (key, code hash) are new, done, failed before, or
    done by other code (a passed row whose ``_code_hash`` differs)."""
    passed: dict[RowKey, set[str | None]] = {}
    failed: set[RowKey] = set()
    if database is not None and len(database) and {"_sweep", "_outcome"} <= set(database):
        code = database["_code_hash"] if "_code_hash" in database else [None] * len(database)
        for key, outcome, code_hash in zip(row_keys(database), database["_outcome"], code):
            if outcome == "passed":
                passed.setdefault(key, set()).add(code_hash)
            elif outcome == "failed":
                failed.add(key)
    counts: dict[str, Counter[str]] = {}
    for key, code_hash in cases:
        count = counts.setdefault(key[0], Counter())
        if key in passed:
            same_code = code_hash in passed[key]
            count["done" if same_code else "other code"] += 1
        elif key in failed:
            count["failed before"] += 1
        else:
            count["new"] += 1
    return counts
