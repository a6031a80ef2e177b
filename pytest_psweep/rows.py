"""How one pset becomes one row, wherever it runs (``ps.run``, a pool or dask worker,
a pytest item).

The function sees its parameters and psweep's book-keeping, in psweep's order; the
row keeps the parameters and book-keeping the pset ran with, whatever the function
did to its dict, then the function's results, then ``_pset_runtime``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import PsweepError
from .names import new_id
from .params import BOOKKEEPING, pset_hash, public_params

_HOST = socket.gethostname()

# ps.run numbers its psets before they run (psweep does); the plugin's are numbered
# where the database is written
COUNTERS = ("_run_seq", "_pset_seq")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


_timestamp: Callable[[datetime], datetime] | None = None  # pandas' Timestamp, once loaded


def _now(timestamp: bool) -> datetime:
    """The time a pset starts, in UTC: a pandas Timestamp (what psweep's functions see
    and the database holds) for ``ps.run``, a datetime for pytest's sweeps."""
    global _timestamp
    now = datetime.now(timezone.utc)
    if timestamp:
        if _timestamp is None:
            import pandas as pd

            _timestamp = pd.Timestamp
        return _timestamp(now)
    return now


class Run:
    """One run (a ``run()`` call or a pytest session): its id and how a pset becomes a row.

    A row leaves ``finish`` in wire form: builtin types only where book-keeping is
    concerned (``_time_utc`` as integer microseconds since the epoch), so that it
    pickles fast into the journal and crosses to an xdist controller.
    """

    def __init__(self, calc_dir: str, run_id: str | None = None, as_psweep: bool = False) -> None:
        self.calc_dir = str(calc_dir)
        self.run_id = run_id or new_id()
        # ps.run: the function sees what psweep's sees (_time_utc a pandas Timestamp,
        # _exec_host); a pytest sweep's, the fields its README lists
        self.as_psweep = as_psweep

    def bookkeep(
        self, row: dict[str, Any], digest: str | None = None, start: Any = None
    ) -> dict[str, Any]:
        """Give the pset's dict, in place, psweep's book-keeping fields in psweep's order
        after its parameters, and return the truth: those parameters and fields, which
        ``finish`` puts back whatever the function did to its pset. ``start``: its
        ``_time_utc`` if not now (``start_now`` sets it when it starts)."""
        counters = {key: row[key] for key in COUNTERS if key in row}
        params = {key: value for key, value in row.items() if key not in BOOKKEEPING}
        truth = {
            **params,
            "_pset_hash": digest or pset_hash(params),
            "_pset_id": new_id(),
            **counters,
            "_run_id": self.run_id,
            "_calc_dir": self.calc_dir,
            "_time_utc": _now(self.as_psweep) if start is None else start,
        }
        if self.as_psweep:
            truth["_exec_host"] = _HOST
        row.clear()
        row.update(truth)
        return truth

    def call(
        self, call: Callable[[], Any], row: dict[str, Any], truth: dict[str, Any], where: str
    ) -> list[str]:
        """Run ``call()`` (the function on this row), time it, merge what it returns.

        Returns the keys the function returned.
        """
        __tracebackhide__ = True  # a failed pset shows the user's code, not ours
        start = time.perf_counter()
        try:
            result = call()
        finally:
            truth["_pset_runtime"] = time.perf_counter() - start
        if isinstance(result, dict):  # it may be the pset itself, changed (psweep's style)
            result = dict(result)
        # what the function removed from or changed in its pset is the truth's again
        row.update(truth)
        return merge_result(row, result, truth, where)

    def finish(self, row: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
        """The row in wire form: the pset's parameters and book-keeping as they ran,
        then what the function returned or added, then ``_pset_runtime``."""
        out = dict(truth)
        runtime = out.pop("_pset_runtime", 0.0)
        out.update({key: value for key, value in row.items() if key not in out})
        out.pop("_pset_runtime", None)
        out.setdefault("_exec_host", _HOST)
        out["_pset_runtime"] = runtime
        started = out["_time_utc"]
        if type(started) is datetime:
            out["_time_utc"] = (started - _EPOCH) // _MICROSECOND
        elif isinstance(started, datetime):  # a pandas Timestamp (ps.run): its ns
            out["_time_utc"] = started.value // 1000  # type: ignore[attr-defined]
        return out

    def execute(
        self,
        func: Callable[[dict[str, Any]], Any],
        pset: dict[str, Any],
        digest: str | None = None,
        simulate: bool = False,
    ) -> dict[str, Any]:
        """The row of one pset: prepared, func's result merged (unless simulating)."""
        row = dict(pset)
        truth = self.bookkeep(row, digest)
        return self.complete(func, row, truth, simulate)

    def complete(
        self,
        func: Callable[[dict[str, Any]], Any],
        row: dict[str, Any],
        truth: dict[str, Any],
        simulate: bool = False,
    ) -> dict[str, Any]:
        """The row of a pset given its ``bookkeep``: func called on it (unless
        simulating), its result merged."""
        if not simulate:
            self.call(lambda: func(row), row, truth, _func_name(func))
        return self.finish(row, truth)

    def start_now(self, row: dict[str, Any], truth: dict[str, Any]) -> int:
        """Set a prepared pset's ``_time_utc`` to now; return it in wire form."""
        now = _now(self.as_psweep)
        truth["_time_utc"] = row["_time_utc"] = now
        if type(now) is datetime:
            return (now - _EPOCH) // _MICROSECOND
        return now.value // 1000  # type: ignore[attr-defined, no-any-return]  # a Timestamp


def merge_result(row: dict[str, Any], result: Any, truth: dict[str, Any], where: str) -> list[str]:
    """``row.update(result)`` for a dict or None. Anything else, or a parameter or
    book-keeping key with another value than the pset ran with (returning the pset
    itself is fine), is the user's mistake: the rest of the result is merged, the row
    keeps what ran, and a PsweepError names the key."""
    __tracebackhide__ = True  # a failed pset shows the user's code, not ours
    if result is None:
        return []
    if not isinstance(result, dict):
        kind = type(result).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise PsweepError(
            f"{where}: returned {article} {kind} for pset "
            f"{public_params(row)}; return a dict of results (or None)"
        )
    clash = [
        key
        for key in result
        if (key in truth or key in BOOKKEEPING) and not _same(result[key], truth.get(key))
    ]
    if not clash:
        row.update(result)
        return list(result)
    row.update((key, value) for key, value in result.items() if key not in clash)
    params = [key for key in clash if key not in BOOKKEEPING]
    if params:
        changed = ", ".join(f"{key!r}={result[key]!r} (ran with {truth[key]!r})" for key in params)
        raise PsweepError(
            f"{where}: returned parameter key(s) {changed} for pset {public_params(truth)}; "
            "the row keeps the values that ran: return results under other names "
            "(psweep's convention: 'name_')"
        )
    raise PsweepError(
        f"{where}: returned book-keeping key(s) {', '.join(map(repr, clash))} for pset "
        f"{public_params(row)}; pytest-psweep sets these columns: rename the result(s)"
    )


def _same(value: Any, true: Any) -> bool:
    """Is a returned value the one the pset ran with (the function returned its pset)?"""
    if value is true:
        return True
    try:
        return bool(value == true)
    except Exception:
        return False


def _func_name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
