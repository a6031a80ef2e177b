"""The row sink: every row a session makes, into its calc dirs' journals as it
arrives and into their databases at the end.

It runs in the one process that owns the calc dirs (serially the pytest process;
under xdist the controller). It opens a calc dir that is one already (its marker)
when the session starts, merging what interrupted runs left, and makes a new one
only when psets are about to run: a session that runs no sweep starts no writer and
makes no folder. A sweep with a calc dir of its own (``ps.sweep(calc_dir=...)``)
gets a ``CalcSession`` of its own, opened when its first row arrives.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import journal
from .errors import PsweepError
from .inflight import InFlight, interrupts_deferred, reports_left_by_xdist
from .names import counted
from .options import usage_errors
from .session import CalcSession
from .settings import Options, State
from .sweeps import header_counts
from .wire import TEARDOWN_ERROR_ATTR, PsetRecord, SweepCount, take_counts

if TYPE_CHECKING:
    from .reporter import Reporter


class RowSink:
    """Journals each pset's record as its report arrives, so a killed session loses
    none, and has the writer append the journal at the end."""

    def __init__(self, config: pytest.Config, options: Options, state: State) -> None:
        self.config = config
        self.options = options
        self.state = state
        self.reporter: Reporter | None = None  # told of each record, and of the start
        self.session = self._new_session(options.calc_dir)
        # sweeps with a calc dir of their own: its session, opened with its first row
        self.own: dict[str, CalcSession] = {}
        # per session: module paths (rootdir-relative) that made rows
        self.modules: dict[CalcSession, dict[str, None]] = {}
        self.manifests: set[CalcSession] = set()  # a shard's sessions that wrote one
        self.counts: collections.Counter[str] = collections.Counter()  # by outcome
        # psets whose started record is journaled and whose row has not come yet
        self.in_flight = InFlight(state.moved)
        self.started = False
        self.default_open = False  # the session's calc dir opened (see start)
        self.failure: str | None = None  # what stopped the session, said at the end
        self.written: int | None = None  # rows written into databases at the end
        self.databases: list[Path] = []  # the databases (or shard files) rows went to
        self.interrupted = False
        self.collected: list[SweepCount] = []  # the sweeps this session runs

    # -- the start, when the first pset is about to run --------------------------------

    def start(self) -> None:
        """Merge interrupted runs, back up, start the writer, and find what the options
        need from the database (done psets, baseline). Once: at the session's start for
        a calc dir that is one already, else when psets are about to run (serially
        when the test loop starts; under xdist when workers need what it reads, or
        the first row arrives)."""
        if self.started:
            return
        self.started = True
        options = self.options
        if options.shard is None and _own_calc_dirs_only(self.collected):
            return  # no row goes to the session's calc dir (yet): not made, not copied
        self._open_default()

    def _open_default(self) -> None:
        """Open the session's calc dir (``start``)."""
        self.default_open = True
        options, state = self.options, self.state
        with usage_errors():
            # a shard never writes the database: no writer to start
            self.session.open(with_writer=options.shard is None)
            if options.skip_dups:
                state.done |= self.session.done()
            if options.compare is not None:
                state.baseline.update(self.session.baseline(options.compare))
        if self.reporter is not None:
            self.reporter.opened(self.session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """A calc dir that is one already (``CalcDir.is_ours``) is opened at once,
        before collection: what interrupted runs left there is merged by any session
        with --psweep (a new one, or one to copy, only when psets are about to run)."""
        options = self.options
        if not options.dry_run and not copies(options) and self.session.calc_dir.is_ours():
            self.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """What this session runs (after -k and -m), for the header."""
        if not self.options.dry_run:
            self.collected = header_counts(session.items, self.state)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Serially, before the first pset runs: open the calc dir if a sweep is to run
        (or a shard task runs, whose manifest says it ran), and stop if the writer
        cannot read the database."""
        if self.options.dry_run:
            return
        runs = any(count.psets for count in self.collected)
        if runs or (self.options.shard is not None and not _xdist_active(self.config)):
            self.start()
            self.write_manifests(self.collected)
        if runs:
            _freeze_collected()
        if self.started:
            with usage_errors():
                self.session.wait_until_checked()

    # -- while psets run -----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Journal each row as its report arrives. The first row opens the calc dir;
        a Ctrl-C while it does (imports, locks, the writer starting) waits until that
        row is journaled, so no report that arrived is lost to it."""
        if self.default_open:
            self._take(report)
        else:  # the first row (of the session's calc dir) may open it
            with interrupts_deferred():
                self._take(report)

    def _take(self, report: pytest.TestReport) -> None:
        counts = take_counts(report)  # an xdist worker's first report
        if counts and not self.collected:  # psets run: the worker collected some
            self.collected = counts
            self.start()
            self.write_manifests(counts)
            if self.reporter is not None:
                self.reporter.collected(counts)
        record = PsetRecord.take(report)
        if record is None or self.options.dry_run:
            if getattr(report, TEARDOWN_ERROR_ATTR, False):  # a pset's teardown failed
                if report.failed:
                    self.counts["error: teardown"] += 1
                elif str(report.outcome) == "rerun":  # pytest-rerunfailures runs it again
                    self.counts["rerun: teardown"] += 1
            return
        if not record.payload:  # a pset skipped before it ran: counted, no row
            _count(self.counts, record.outcome, report)
            if self.reporter is not None:
                self.reporter.record(record)
            return
        if not self.started:
            self.start()
        session = self.session_of(record.calc_dir)
        self.journal(record.payload, session=session)
        if record.outcome == "started":
            self.in_flight.started(report.nodeid, record.pset_id, session)
        else:
            self.in_flight.finished(report.nodeid, record.pset_id)
            _count(self.counts, record.outcome, report)
            self.modules.setdefault(session, {})[report.fspath] = None
        if self.reporter is not None:
            self.reporter.record(record)

    def crashed(self, nodeid: str) -> None:
        """A worker died running this item: its started record is its row."""
        if self.in_flight.crashed(nodeid):
            self.counts["crashed"] += 1

    def session_of(self, calc_dir: str | None) -> CalcSession:
        """The session of the default calc dir, or of a sweep's own (opened now, when
        its first row arrives); a calc dir that cannot be opened ends the session."""
        if calc_dir is None:
            if not self.default_open:
                self._open_default()
            return self.session
        session = self.own.get(calc_dir)
        if session is None:
            session = self.own[calc_dir] = self._new_session(Path(calc_dir))
            try:
                session.open(with_writer=self.options.shard is None)
            except PsweepError as exc:
                self.failure = f"psweep: {exc}"
                pytest.exit(self.failure, returncode=pytest.ExitCode.USAGE_ERROR)
            if self.reporter is not None:
                self.reporter.opened(session)
        return session

    def _new_session(self, calc_dir: Path) -> CalcSession:
        options = self.options
        return CalcSession(
            calc_dir,
            options.run_id,
            options.simulate,
            options.backup,
            options.lock_timeout,
            shard=options.shard,
            chosen_run_id=options.chosen_run_id,
        )

    def sessions(self) -> list[CalcSession]:
        """The calc dirs opened: the session's (unless only sweeps with calc dirs of
        their own ran) and the sweeps' own."""
        return [self.session, *self.own.values()] if self.default_open else [*self.own.values()]

    def journal(self, record: bytes, stop: bool = True, session: CalcSession | None = None) -> None:
        """Journal one record; a journal that cannot be written (a full disk) ends the
        session (``stop``) with a clear error, and the rows journaled before stay."""
        if self.failure is not None:
            return
        session = session or self.session
        try:
            session.record_encoded(record)
        except PsweepError as exc:
            self.failure = (
                f"psweep: {exc}; the session stopped: what it journaled before ("
                f"{counted(session.count, 'record')}) waits for the next run or 'psweep recover'"
            )
            if stop:
                pytest.exit(self.failure, returncode=pytest.ExitCode.INTERNAL_ERROR)

    def write_manifests(self, counts: list[SweepCount]) -> None:
        """A shard's psets per sweep and calc dir, for what ``psweep merge`` counts as
        missing."""
        if self.options.shard is None:
            return
        by_calc_dir: dict[str | None, list[SweepCount]] = {None: []}
        for count in counts:
            by_calc_dir.setdefault(count.calc_dir, []).append(count)
        for calc_dir, mine in by_calc_dir.items():
            self._write_manifest(mine, self.session_of(calc_dir))

    def _write_manifest(self, counts: list[SweepCount], session: CalcSession) -> None:
        if session in self.manifests or not session.journaling:
            return
        self.manifests.add(session)
        psets = {count.sweep: count.psets * count.cases for count in counts}
        # every shard's psets together: what merge counts as missing
        totals = {c.sweep: (c.psets if c.total is None else c.total) * c.cases for c in counts}
        roots = sorted({import_root(self.config.rootpath / c.module) for c in counts})
        try:
            session.write_manifest(psets, roots, totals)
        except PsweepError as exc:  # its rows are what matters: they are journaled
            if self.reporter is not None:
                self.reporter.say(f"psweep: the shard's manifest cannot be written ({exc})")

    # -- the end -------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Merge each journal into its database in one atomic write.

        Last, after xdist has stopped its workers: after a Ctrl-C they may have gone
        on finishing psets while they were stopped, and their reports came in.
        """
        if not self.started:  # a dry run, or no sweep ran
            return
        if self.default_open and self.session.writer is None and self.options.shard is None:
            return  # the start failed
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
            for report in reports_left_by_xdist(self.config):
                self.pytest_runtest_logreport(report)
            self.take_back_in_flight()  # those started while xdist's workers stopped
        elif self.in_flight:
            self.counts["crashed"] += len(self.in_flight)
        self.in_flight.clear()
        self.in_flight.move_unmoved()  # taken back at a Ctrl-C: xdist's workers have stopped
        if self.failure is not None:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        for calc_session in self.sessions():
            if self.options.shard is not None:
                if not _finish_shard(self, calc_session):
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            elif not self._finish(calc_session):
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        self.written = self.written or 0
        if self.reporter is not None and self.options.shard is None:
            self.reporter.write_report(self)

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        """A Ctrl-C: at once, before pytest formats it (a second Ctrl-C meanwhile ends
        the process), the running psets' started records are taken back."""
        if self.started:
            with interrupts_deferred():
                self.take_back_in_flight()

    def take_back_in_flight(self, only: list[str] | None = None) -> None:
        """Psets the user interrupted (Ctrl-C; ``only`` these, that pytest.exit ended
        in an xdist worker) did not crash: they get no row, and the files they began
        are moved out of the way (no folder without a row)."""

        def cancel(pset_id: str, session: CalcSession) -> None:
            self.journal(journal.encode_cancel(pset_id), stop=False, session=session)

        move = only is not None or not _xdist_active(self.config)  # only: its worker ended
        self.in_flight.take_back(cancel, move, only)

    def _finish(self, session: CalcSession) -> bool:
        """One calc dir's end: the writer appends its journal, the sweep modules are
        kept, the finish hook and a CI job's summary; False if the rows could not be
        written (they stay journaled, and the failure says where)."""
        modules = self.modules.get(session, {})
        try:
            roots = [import_root(self.config.rootpath / module) for module in modules]
            written = session.finish_in_writer(roots)
        except PsweepError as exc:
            self.failure = (
                (self.failure + "\n" if self.failure else "")
                + f"psweep: {exc}; this session's rows stay in "
                f"{session.target.journal_dir}: the next run merges them, or "
                f"'psweep recover {session.target.path}'"
            )
            return False
        if session is self.session or written:
            self.written = (self.written or 0) + written
            self.databases.append(session.target.database)
        if not session.count:
            return True
        for module in modules:
            session.keep_module(self.config.rootpath / module, module)
        if self.reporter is not None:
            self.reporter.finished(session)
        return True

    def pytest_unconfigure(self) -> None:
        for session in self.sessions():
            session.close()


def _finish_shard(sink: RowSink, session: CalcSession) -> bool:
    """A shard leaves its rows in its own file under ``<calc_dir>/shards/``; False
    if they could not be left there as they should (the failure says why)."""
    if not session.journaling:
        return True  # its start failed: nothing ran
    sink._write_manifest([], session)  # a task that collected no psets ran too
    try:
        shard_file = session.finish_shard()
    except OSError as exc:
        sink.failure = f"psweep: {session.journal_path} cannot be renamed: {exc}"
        return False
    except PsweepError as exc:  # its journal was taken: its rows are written again
        sink.failure = f"psweep: {exc}"
        return False
    sink.databases.append(shard_file or session.journal_path)
    for module in sink.modules.get(session, {}):
        session.keep_module(sink.config.rootpath / module, module)
    return True


def import_root(module: Path) -> str:
    """The folder a test module is imported from (pytest's default ``prepend`` import
    mode): above its topmost package, or its own folder. Under xdist the controller
    collects nothing, so its ``sys.path`` lacks these; the writer needs them to
    decode rows holding objects of classes from the sweep modules."""
    folder = module.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return str(folder)


def _xdist_active(config: pytest.Config) -> bool:
    """Does this process control xdist workers? (``dist`` is missing under -p no:xdist)"""
    return getattr(config.option, "dist", "no") != "no" or bool(
        getattr(config.option, "numprocesses", None)
    )


def _own_calc_dirs_only(collected: list[SweepCount]) -> bool:
    """Do only sweeps with calc dirs of their own run (-k or -m chose them)?"""
    running = [count for count in collected if count.psets]
    return bool(running) and all(count.calc_dir is not None for count in running)


def copies(options: Options) -> bool:
    """Does opening the calc dir copy it (``--psweep-simulate``, ``--psweep-backup``)?
    Then it is opened only when psets are about to run: a session whose -k or -m
    chose no sweep makes no copy."""
    return options.simulate or options.backup


def _count(counts: collections.Counter[str], outcome: str, report: pytest.TestReport) -> None:
    """Count a pset by outcome, and a failed or skipped one that pytest counts as
    xfailed, or a failed one it counts as an error (in setup), once more, so that the
    summary can say why."""
    counts[outcome] += 1
    if outcome == "skipped" and hasattr(report, "wasxfail"):  # xfail(run=False), in setup
        counts["skipped: xfail"] += 1
    elif outcome == "failed":
        if hasattr(report, "wasxfail"):
            counts["failed: xfail"] += 1
        elif report.when == "setup":
            counts["failed: setup"] += 1


def _freeze_collected() -> None:
    """After collection: move what collection made (items, their marks and params:
    they live to the end of the session) out of the garbage collector's sight, so
    that its collections while psets run do not walk them again and again (with
    10k items, about a tenth of a trivial sweep's time; benchmarks/README.md).
    Garbage of collection itself is collected first."""
    import gc

    gc.collect()
    gc.freeze()
