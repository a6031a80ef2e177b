"""What a sweep item's report carries to the controller: the wire record.

A report is pytest's message from the process that ran an item to the one that
reports it; under xdist pytest serializes it (``pytest_report_to_serializable``
copies the report's ``__dict__``) and execnet sends it, which carries builtin types
only. So a sweep item's report carries, in the attribute ``psweep_record``, one
``PsetRecord`` as a tuple of builtin values (``attach``, ``take``), and a worker's
first report carries in ``psweep_counts`` what it collected, a list of
``SweepCount``. ``tests/test_wire.py`` pins both through pytest's own serialization.
A sweep item's teardown report that failed carries ``psweep_teardown_error`` (True),
for the summary's count. Nothing else travels, and no code parses node ids: the
sweep id and the key of a pset are in the record.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from .names import RowKey

RECORD_ATTR = "psweep_record"
COUNTS_ATTR = "psweep_counts"
# a sweep item's teardown report that failed: pytest counts an error more than the psets
TEARDOWN_ERROR_ATTR = "psweep_teardown_error"


class PsetRecord(NamedTuple):
    """One pset's news: it started (its row says ``crashed`` until its real row
    comes) or it finished. A tuple: made twice per pset, it must be cheap."""

    sweep: str  # the sweep's id, its rows' _sweep
    digest: str  # the pset's _pset_hash
    case: str  # _case_hash of its other parametrizations, "" without
    outcome: str  # "started", "passed", "failed", "skipped" or "rerun"
    pset_id: str  # the row's _pset_id ("" for a pset skipped before it ran)
    payload: bytes  # the row as a journal record (journal.encode_row); b"": no row
    calc_dir: str | None = None  # the sweep's own calc dir; None: the session's
    verdict: str | None = None  # --psweep-compare: "new", "same" or "differs"
    drift: tuple[tuple[str, float | None, float | None], ...] = ()  # key, abs, rel diff

    @property
    def key(self) -> RowKey:
        return (self.sweep, self.digest, self.case)

    def attach(self, report: pytest.TestReport) -> None:
        setattr(report, RECORD_ATTR, tuple(self))  # a plain tuple: execnet sends those

    @classmethod
    def take(cls, report: pytest.TestReport) -> PsetRecord | None:
        """The record a report carries, taken off it (pytest keeps every report to
        the end, and each attribute is walked by its garbage collections at exit)."""
        carried = getattr(report, RECORD_ATTR, None)
        if carried is None:
            return None
        delattr(report, RECORD_ATTR)
        return cls._make(carried)


class SweepCount(NamedTuple):
    """What a process collected of one sweep: the header's line."""

    sweep: str  # the sweep's id
    module: str  # its module's path, relative to the rootdir
    psets: int  # different psets among the items
    cases: int  # different values of its other parametrizations (1 without)
    total: int | None  # psets before --psweep-select or --psweep-shard chose; None
    calc_dir: str | None  # its own calc dir; None: the session's


def attach_counts(report: pytest.TestReport, counts: list[SweepCount]) -> None:
    setattr(report, COUNTS_ATTR, [tuple(count) for count in counts])


def take_counts(report: pytest.TestReport) -> list[SweepCount] | None:
    carried = getattr(report, COUNTS_ATTR, None)
    if carried is None:
        return None
    delattr(report, COUNTS_ATTR)
    return [SweepCount(*count) for count in carried]
