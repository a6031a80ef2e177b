"""The report's comparison with a baseline, with numbers (issue 22.5), whenever the
report is made: per result key, how many psets were compared, how many drifted, the
largest absolute and relative difference; the row-by-row list folded.

Against ``baseline`` (``psweep report --baseline PATH``): every newest row of a pset
that ran (passed, or failed by compare) against the baseline's newest passed row of
its key. Without one: the psets whose newest row failed by compare (``_error`` of
"compare: ...") against their previous passed row in the same database (the
baseline of a ``--psweep-compare`` against the calc dir itself).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import compare
from .database import row_keys
from .names import ATOL, RTOL
from .report_failures import pset_text

if TYPE_CHECKING:
    import pandas as pd

LISTED = 500  # differences listed per sweep; the rest are counted


@dataclass
class Baseline:
    """What the report compares with: a baseline database (None: each pset's
    previous passed row), its tolerances, and result keys left out."""

    frame: pd.DataFrame | None = None
    name: str | None = None
    rtol: float = RTOL
    atol: float = ATOL
    ignore: tuple[str, ...] = ()


@dataclass
class KeyDrift:
    key: str
    compared: int = 0
    drifted: int = 0
    max_abs: float | None = None
    max_rel: float | None = None

    def add(self, difference: compare.Difference | None) -> None:
        self.compared += 1
        if difference is None:
            return
        self.drifted += 1
        for name in ("max_abs", "max_rel"):
            value = difference.abs_diff if name == "max_abs" else difference.rel_diff
            if value is not None and not math.isnan(value):
                old = getattr(self, name)
                setattr(self, name, value if old is None else max(old, value))

    @property
    def largest(self) -> tuple[str, str]:
        return _number(self.max_abs), _number(self.max_rel)


@dataclass
class CompareSection:
    against: str  # what the rows were compared with
    tolerance: str
    keys: list[KeyDrift]
    psets: int  # psets compared
    new: int  # psets without a baseline row
    rows: list[dict[str, str]] = field(default_factory=list)  # one per difference
    hidden: int = 0  # differences not listed
    drifted: int = 0  # psets with a difference
    ignored: list[str] = field(default_factory=list)


def section(
    latest: pd.DataFrame,
    history: pd.DataFrame,
    baseline: pd.DataFrame | None,
    baseline_name: str | None,
    params: list[str],
    results: list[str],
    rtol: float = RTOL,
    atol: float = ATOL,
    ignore: tuple[str, ...] = (),
) -> CompareSection | None:
    """The comparison of one sweep's newest rows (``latest``; ``history``: all its
    rows), or None when there is nothing to compare."""

    found_rules: set[str] = set()
    outcome = latest["_outcome"].astype(str) if "_outcome" in latest else None
    error = latest["_error"].astype(str) if "_error" in latest else None
    if baseline is not None:
        ran = outcome == "passed" if outcome is not None else None
        if ran is not None and error is not None:
            ran |= error.str.startswith("compare:")  # failed by compare: results kept
        rows = latest if ran is None else latest[ran]
        index = compare.baseline_index(baseline)
        against = f"baseline {baseline_name}"
    else:
        if error is None:
            return None
        rows = latest[error.str.startswith("compare:")]
        if not len(rows):
            return None
        found_rules = {m[1] for m in map(_RULES.search, rows["_error"].astype(str)) if m}
        named = _named_baseline(rows["_error"])
        if named is not None:  # the baseline the compare session used, still there
            index = compare.baseline_index(named[1])
            against = f"baseline {named[0]}"
        else:
            index = compare.baseline_index(history)  # the newest passed row before each
            against = "each pset's previous passed row in this database"
    keys = [k for k in results if k not in ignore]
    drift = {key: KeyDrift(key) for key in keys}
    found = CompareSection(against, f"rtol {rtol:g}, atol {atol:g}", [], 0, 0)
    found.ignored = [k for k in results if k in ignore]
    if baseline is None and found_rules:
        found.tolerance += "; the session's per-result rules: " + " | ".join(sorted(found_rules))
    drifted_psets: set[str] = set()
    for key, row in zip(row_keys(rows), rows.to_dict("records")):
        old = index.get(key)
        if old is None:
            found.new += 1
            continue
        found.psets += 1
        present = [k for k in keys if k in row]
        differences = {
            d.key: d
            for d in compare.differences(old, row, present, params, rtol=rtol, atol=atol)
            if d.key in drift
        }
        pset = pset_text(row, params)
        for name in present:
            difference = differences.get(name)
            drift[name].add(difference)
            if difference is None:
                continue
            if len(found.rows) < LISTED:
                found.rows.append(_listed(pset, difference))
            else:
                found.hidden += 1
            drifted_psets.add(pset)
    found.drifted = len(drifted_psets)
    found.keys = [d for d in drift.values() if d.compared]
    if not found.psets and not found.new:
        return None
    return found


_NAMED = re.compile(r"compare: results differ from baseline (.+?) \(row ")
_RULES = re.compile(r"\) in [^;]*; (.+)$")  # the sweep's per-result tolerances


def _named_baseline(errors: pd.Series) -> tuple[str, pd.DataFrame] | None:
    """The one baseline database that the compare errors name, read, if it is still
    there (a baseline of its own calc dir is its database: the same rows)."""
    from .database import df_read

    paths = {m[1] for m in map(_NAMED.match, errors.astype(str)) if m is not None}
    if len(paths) != 1:
        return None
    path = Path(paths.pop())
    try:
        return str(path), df_read(path)
    except Exception:  # moved, or unreadable here: compare with this database's rows
        return None


def _listed(pset: str, difference: compare.Difference) -> dict[str, str]:
    return {
        "pset": pset,
        "key": difference.key,
        "baseline": compare._short(difference.baseline),
        "new": compare._short(difference.new),
        "abs": _number(difference.abs_diff),
        "rel": _number(difference.rel_diff),
    }


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"
