"""Per-result tolerances of ``--psweep-compare``: what ``ps.sweep(..., compare={...})``
and the ini key ``psweep_compare_ignore`` say, checked when the decorator runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import PsweepError
from .names import ATOL, RTOL

Tolerances = dict[str, "tuple[float, float] | None"]  # key: (rtol, atol), None: not compared


def tolerances(spec: Any, ignore: Iterable[str] = ()) -> Tolerances:
    """Per-result tolerances from ``ps.sweep(..., compare={...})`` and the ini key
    ``psweep_compare_ignore``: ``{"wall": None, "err": {"rel": 1e-6, "abs": 1e-12}}``
    (a key missing from the dict: the sweep's rtol/atol). A PsweepError names a key
    whose entry is neither None nor a dict of "rel"/"abs" numbers."""
    found: Tolerances = {key: None for key in ignore}
    for key, entry in dict(spec or {}).items():
        if entry is None:
            found[str(key)] = None
            continue
        if not isinstance(entry, dict) or not set(entry) <= {"rel", "abs"}:
            raise PsweepError(
                f"ps.sweep(compare=...): the entry of {key!r} is {entry!r}; give None (not "
                'compared) or a dict such as {"rel": 1e-6, "abs": 1e-12}'
            )
        try:
            rel, tol_abs = float(entry.get("rel", RTOL)), float(entry.get("abs", ATOL))
        except (TypeError, ValueError):
            raise PsweepError(
                f"ps.sweep(compare=...): the tolerances of {key!r} are not numbers: {entry!r}"
            ) from None
        found[str(key)] = (rel, tol_abs)
    return found


def describe(per_key: Tolerances) -> str:
    """The per-result tolerances in words (for the summary and the report)."""
    skipped = sorted(key for key, value in per_key.items() if value is None)
    own = [f"{key} within rel {v[0]:g}, abs {v[1]:g}" for key, v in per_key.items() if v]
    return "; ".join(own + ([f"not compared: {', '.join(skipped)}"] if skipped else []))
