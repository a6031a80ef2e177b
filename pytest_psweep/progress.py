"""How far a session is and how long it will take.

While psets run, on a terminal: now and then a line with done/total, failures so
far and an ETA from this run's pace (``Progress``). Before a run (``--collect-only``,
``--psweep-simulate``): the time the psets took when they last passed, and the
slowest of them (``prediction``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .database import latest_passed, row_keys
from .names import RowKey, counted
from .params import pset_ids


def duration(seconds: float) -> str:
    """``0:42``, ``12:03``, ``1:02:03``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts psets as they finish and says, at most every ``every`` seconds, how
    many of ``total`` are done, how many failed, and when the rest will be: this
    run's pace so far (finished psets per second of wall time, which counts xdist's
    workers in) applied to the psets left."""

    def __init__(self, every: float, clock: Any = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.total = 0
        self.done = 0
        self.failed = 0
        self.start: float | None = None
        self.last_said: float | None = None

    def started(self) -> None:
        if self.start is None:
            self.start = self.last_said = self.clock()

    def finished(self, failed: bool) -> str | None:
        """Count one finished pset; the line to show, when one is due."""
        self.done += 1
        self.failed += failed
        now = self.clock()
        if self.start is None or self.last_said is None or now - self.last_said < self.every:
            return None
        if self.done >= self.total:
            return None  # the summary says the rest
        self.last_said = now
        return self.line(now)

    def line(self, now: float) -> str:
        assert self.start is not None
        elapsed = now - self.start
        left = max(self.total - self.done, 0)
        eta = duration(elapsed / self.done * left) if self.done else "?"
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"psweep: {self.done}/{self.total} psets done{failed}, {duration(elapsed)} "
            f"so far, about {eta} to go"
        )


def prediction(before: Any, cases: Iterable[tuple[RowKey, str]]) -> list[str]:
    """What the cases (key, name) took when they last passed in ``before``: the total,
    how many never passed, and the three slowest, as lines for the summary."""
    latest = latest_passed(before)
    if latest is None or "_pset_runtime" not in latest:
        return []
    runtime = dict(zip(row_keys(latest), latest["_pset_runtime"]))
    cases = list(cases)
    known = [(runtime[key], name) for key, name in cases if key in runtime]
    unknown = len(cases) - len(known)
    if not known:
        return []
    total = sum(float(seconds) for seconds, _ in known)
    slowest = sorted(known, key=lambda pair: -float(pair[0]))[:3]
    lines = [
        f"prediction: {duration(total)} of pset time for the "
        f"{counted(len(known), 'pset')} that "
        f"passed before"
        + (f" ({unknown} never passed: no estimate)" if unknown else "")
        + " (serially; divide by the workers under -n)"
    ]
    lines += [f"  slowest: {name} {float(seconds):.3g} s" for seconds, name in slowest]
    return lines


def pset_id_of(params: dict[str, Any]) -> str:
    """The id pytest gave the item of these parameter values (``a=1-b=#1f9b0e21``),
    for node ids built from database rows."""
    return pset_ids([params])[0]


def estimate(before: Any, items: dict[str, int], workers: int) -> str | None:
    """How long ``items`` (per sweep, how many) will take on ``workers``, from each
    sweep's mean runtime of its latest passed rows; None without any."""
    latest = latest_passed(before)
    if latest is None or "_pset_runtime" not in latest:
        return None
    means = latest.groupby("_sweep")["_pset_runtime"].mean()
    known = {sweep: count for sweep, count in items.items() if sweep in means.index}
    if not known:
        return None
    total = sum(float(means[sweep]) * count for sweep, count in known.items())
    psets = sum(known.values())
    others = sum(items.values()) - psets
    return (
        f"expected: about {duration(total / workers)} on {workers} workers "
        f"({duration(total)} of pset time for {counted(psets, 'pset')}, from the mean runtime of "
        "their sweeps' earlier rows"
        + (f"; {others} of sweeps without earlier rows not counted" if others else "")
        + ")"
    )
