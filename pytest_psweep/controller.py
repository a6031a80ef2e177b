"""The controller: the one process of a pytest session that owns the calc dir.

Serially that is the pytest process; under xdist the controller, which runs no
items. It translates pytest's hooks into calls on the session's ``CalcSession``
(merge interrupted runs, start the writer, journal each row as its report arrives,
have the writer append them at the end), hands workers what was made once, and
says what happened: the header, the look-ahead and the summary. Hooks appear in
the order pytest calls them.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import compare, integrations, journal, mounts, shards
from .calcdir import Database
from .database import concat, row_keys, rows_to_frame
from .errors import PsweepError
from .params import public_values
from .progress import Progress, estimate, prediction
from .session import CalcSession
from .sweeps import (
    ReportedRow,
    Settings,
    SweepPset,
    header_counts,
    sweep_of,
    sweep_pset,
    take_header,
)

OUTCOMES = ("passed", "failed", "skipped")


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A PsweepError (the user asked for something wrong) as pytest's usage error."""
    try:
        yield
    except PsweepError as exc:
        raise pytest.UsageError(f"psweep: {exc}") from None


class Controller:
    """Runs in the one process that owns the calc dir: the only writer of files."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session = self._new_session(settings.calc_dir)
        self.manifests: set[CalcSession] = set()  # a shard's sessions that wrote one
        self.counts: collections.Counter[str] = collections.Counter()
        self.verdicts: collections.Counter[str] = collections.Counter()
        # (sweep, key) -> [psets that differ, largest abs diff, largest rel diff]
        self.drift: dict[tuple[str, str], list[Any]] = {}
        # sweeps with a calc dir of their own (ps.sweep(calc_dir=...)): its session,
        # opened when its first row arrives
        self.own: dict[str, CalcSession] = {}
        # per session: module paths (rootdir-relative) that made rows
        self.modules: dict[CalcSession, dict[str, None]] = {}
        self.written: int | None = None
        self.databases: list[Path] = []  # the databases (or shard files) rows went to
        self.lookahead: dict[str, collections.Counter[str]] = {}
        self.failure: str | None = None
        # psets whose started record is journaled and whose row has not come yet
        self.in_flight: dict[str, tuple[str, CalcSession]] = {}  # node id -> pset id, session
        self.collect_only = bool(config.option.collectonly)
        self.waiting = 0  # dry run: rows that wait in journals to be merged
        self.waiting_in_shards = 0  # dry run: rows that job-array shards left
        self.prediction: list[str] = []  # dry run: how long the psets took before
        self.progress: Progress | None = None  # on a terminal, while psets run
        self.interrupted = False
        self._started = False
        self._header_done = False
        self._estimated = False  # xdist: the estimate before the first pset finishes
        self.verdicts_by_sweep: dict[str, collections.Counter[str]] = {}
        self.report_note: str | None = None  # where --psweep-report went, or why not

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.start()

    def start(self) -> None:
        """Before anything runs: merge interrupted runs, back up, start the writer,
        and find what the options need from the database (done psets, baseline).

        Called by whichever comes first, this plugin's sessionstart or xdist's
        configuring of the first worker, which needs the results.
        """
        if self._started or self.collect_only:  # a dry run looks, never writes
            return
        self._started = True
        settings = self.settings
        settings.provenance.update(integrations.randomly_seed(self.config))
        with usage_errors():
            # a shard never writes the database: no writer to start
            self.session.open(with_writer=settings.shard is None)
            if settings.skip_dups:
                settings.done = self.session.done()
            if settings.compare is not None:
                settings.baseline = self.session.baseline(settings.compare)
        recovery = self.session.recovery
        if recovery.saved:
            self._say(
                f"psweep: merged {recovery.saved} rows left by an interrupted "
                f"session into {self.session.calc_dir.database}"
            )
        for problem in recovery.deferred:
            self._say(f"psweep: {problem}; tried again at the end of this session")
        for problem in recovery.quarantined:
            self._say(f"psweep: {problem}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand what was made here once to an xdist worker, in builtin types."""
        self.start()
        settings = self.settings
        node.workerinput["psweep_run_id"] = settings.run.run_id
        node.workerinput["psweep_calc_dir"] = str(self.session.target.path)
        node.workerinput["psweep_rootdir"] = str(self.config.rootpath)
        node.workerinput["psweep_done"] = sorted(settings.done)
        node.workerinput["psweep_baseline"] = pickle.dumps(settings.baseline)
        node.workerinput["psweep_provenance"] = settings.provenance
        # a worker knows the study by this token in its own calc dir, under any path
        node.workerinput["psweep_study"] = mounts.token(self.session.target.path)
        node.workerinput["psweep_invocation_dir"] = str(self.config.invocation_params.dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """An xdist worker that runs in another folder than the controller's, and
        found no token of this study there (``mounts.check_worker``), stopped before
        it collected: other sweeps or stale copies would run into this calc dir."""
        message = mounts.refused(node)
        if message is not None:
            pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist, before the first pset finishes: an estimate from earlier rows.
        The controller knows only node ids, not psets: it takes each sweep's mean
        runtime of earlier passed rows (the serial header matches each pset)."""
        if self._estimated or not self._on_terminal():
            return
        self._estimated = True
        if not self.session.target.database.exists():
            return
        per_sweep = collections.Counter(nodeid.split("[", 1)[0] for nodeid in ids)
        with usage_errors():
            line = estimate(self.session.before(), per_sweep, _workers(self.config))
        if line is not None:
            self._say(f"psweep: {line}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The dry run's look-ahead: per sweep, what would be new or done."""
        if not self.collect_only:
            return
        groups: dict[str | None, list[tuple[SweepPset, str]]] = {}
        for item in session.items:
            pset = sweep_pset(item)
            if pset is not None:
                groups.setdefault(pset.sweep.calc_dir, []).append((pset, item.nodeid))
        for calc_dir, pairs in groups.items():
            # a sweep's own calc dir is looked at, never opened
            looked_at = self.session if calc_dir is None else CalcSession(calc_dir, "")
            with usage_errors():
                before = looked_at.before()
                waiting = Database(looked_at.calc_dir).waiting_rows()
                in_shards = shards.waiting_rows(looked_at.calc_dir)
            if waiting or in_shards:  # rows of an interrupted run are done too, once merged
                before = concat(before, rows_to_frame(waiting + in_shards))
                self.waiting += len(waiting)
                self.waiting_in_shards += len(in_shards)
            keys = ((p.key, p.sweep.code_hash) for p, _ in pairs)
            self.lookahead.update(compare.lookahead(before, keys))
            names = {p.key: nodeid for p, nodeid in pairs}
            self.prediction += prediction(before, names.items())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before the first pset runs: stop if the writer cannot read the database."""
        sweeps_here = any(sweep_of(item) is not None for item in session.items)
        if not sweeps_here and not _xdist_active(self.config):
            return  # no sweep in this session: nothing to wait for
        with usage_errors():
            self.session.wait_until_checked()

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> list[str]:
        if self.collect_only and self.config.get_verbosity() < 0:
            return []  # node ids only: the output of --co -q is fed back to pytest
        lines = self._header(header_counts(items, self.settings.unselected))
        if self.progress is not None and self.session.target.database.exists():
            # before the first pset finishes: what these psets took when they last passed
            pairs = [(p.key, item.nodeid) for p, item in zip(map(sweep_pset, items), items) if p]
            with usage_errors():
                expected = prediction(self.session.before(), pairs)
            lines += [f"psweep: {line}" for line in expected[:1]]
        return lines

    def _header(self, counts: list[list[Any]]) -> list[str]:
        """Where rows go, and per sweep how many psets (times how many cases of its
        other parametrizations) this session has."""
        self._expect(sum(psets * cases for _, psets, cases, *_ in counts))
        shard = self.settings.shard
        chosen = ", ".join(
            (["--psweep-select"] if self.settings.select is not None else [])
            + ([f"--psweep-shard={shard.label}"] if shard is not None else [])
        )
        lines = [
            f"psweep: {sweep}: {psets} psets"
            + (f" × {cases} cases" if cases > 1 else "")
            + (f" (of {total}: {chosen})" if total is not None else "")
            + (f", calc dir {own}" if own is not None else "")
            for sweep, psets, cases, total, own in counts
        ]
        if self.settings.shard is not None and not self.collect_only:
            by_calc_dir: dict[str | None, dict[str, int]] = {}
            totals: dict[str, int] = {}  # every shard's psets: what merge counts missing
            for sweep, psets, cases, total, own in counts:
                by_calc_dir.setdefault(own, {})[sweep] = psets * cases
                totals[sweep] = (psets if total is None else total) * cases
            for own, psets_of in by_calc_dir.items():
                self._write_manifest(psets_of, self.session_of(own), totals)
        if not lines:
            return []
        where = f"database {self.session.target.database}"
        if self.settings.shard is not None:
            where = f"shard {self.settings.shard.label}, rows to {self.session.journal_path}"
        if self.collect_only:
            return [f"psweep: {where} (dry run: nothing runs or is written)", *lines]
        return [f"psweep: run {self.settings.run.run_id}, {where}", *lines]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Journal each row as its report arrives, so a killed session loses none."""
        counts = take_header(report)  # an xdist worker's first report
        if counts is not None and not self._header_done:
            self._header_done = True
            for line in self._header(counts):
                self._say(line)
        row = ReportedRow.take(report)
        if row is None:
            return
        session = self.session_of(row.calc_dir)
        self.journal(row.record, session=session)
        if row.outcome == "started":
            self.in_flight[report.nodeid] = (row.pset_id, session)
            if self.progress is not None:
                self.progress.started()
            return
        self.in_flight.pop(report.nodeid, None)
        self.counts[row.outcome] += 1
        if self.progress is not None and row.outcome != "rerun":
            said = self.progress.finished(row.outcome in ("failed", "crashed"))
            if said is not None:
                self._say(said)
        if row.verdict is not None:
            self.verdicts[row.verdict] += 1
            sweep = report.nodeid.split("[", 1)[0]
            self.verdicts_by_sweep.setdefault(sweep, collections.Counter())[row.verdict] += 1
        for sweep, key, abs_diff, rel_diff in row.diffs or ():
            drift = self.drift.setdefault((sweep, key), [0, None, None])
            drift[0] += 1
            drift[1] = _larger(drift[1], abs_diff)
            drift[2] = _larger(drift[2], rel_diff)
        self.modules.setdefault(session, {})[report.fspath] = None

    def session_of(self, calc_dir: str | None) -> CalcSession:
        """The session of the default calc dir, or of a sweep's own (opened now, when
        its first row arrives: merge of interrupted runs, backup, writer); a calc dir
        that cannot be opened ends the session with the error."""
        if calc_dir is None:
            return self.session
        session = self.own.get(calc_dir)
        if session is None:
            session = self.own[calc_dir] = self._new_session(Path(calc_dir))
            try:
                session.open(with_writer=self.settings.shard is None)
            except PsweepError as exc:
                self.failure = f"psweep: {exc}"
                pytest.exit(self.failure, returncode=pytest.ExitCode.USAGE_ERROR)
            if session.recovery.saved:
                self._say(
                    f"psweep: merged {session.recovery.saved} rows left by an interrupted "
                    f"session into {session.calc_dir.database}"
                )
        return session

    def _new_session(self, calc_dir: Path) -> CalcSession:
        settings = self.settings
        return CalcSession(
            calc_dir,
            settings.run.run_id,
            settings.simulate,
            settings.backup,
            settings.lock_timeout,
            shard=settings.shard,
            chosen_run_id=settings.chosen_run_id,
        )

    def _sessions(self) -> list[CalcSession]:
        return [self.session, *self.own.values()]

    def _write_manifest(
        self, psets: dict[str, int], session: CalcSession, totals: dict[str, int]
    ) -> None:
        """A shard's psets per sweep, for what ``psweep merge`` counts as missing."""
        if session in self.manifests or not self._started:
            return
        self.manifests.add(session)
        modules = {sweep.split("::")[0] for sweep in psets}
        roots = sorted({import_root(self.config.rootpath / module) for module in modules})
        try:
            session.write_manifest(psets, roots, {s: totals[s] for s in psets if s in totals})
        except PsweepError as exc:  # its rows are what matters: they are journaled
            self._say(f"psweep: the shard's manifest cannot be written ({exc})")

    def _on_terminal(self) -> bool:
        """Progress is shown: a run (not a dry one) on a terminal at normal verbosity,
        as pytest's own progress."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return not (
            self.collect_only
            or not self.settings.progress_seconds
            or reporter is None
            or not getattr(reporter, "isatty", False)
            or self.config.get_verbosity() < 0
        )

    def _expect(self, total: int) -> None:
        """Progress lines: ``total`` psets (times cases) are about to run."""
        if not total or not self._on_terminal():
            return
        self.progress = Progress(self.settings.progress_seconds)
        self.progress.total = total

    def _journal_reports_left_by_xdist(self) -> None:
        """xdist's controller stops reading its workers' events at a Ctrl-C, while
        the workers go on finishing psets until it has stopped them; the reports that
        came in meanwhile wait in its queue, each carrying a row.

        xdist has no hook for them: its ``DSession.queue`` holds the events as
        (name, kwargs) pairs, a test report as ("testreport", {"node", "rep"}).
        ``test_ctrl_c_to_the_xdist_controller_alone_...`` pins this for the xdist in use.
        """
        dsession = self.config.pluginmanager.getplugin("dsession")
        queue = getattr(dsession, "queue", None)
        while queue is not None:
            try:
                name, kwargs = queue.get_nowait()
            except Exception:  # queue.Empty: all read
                return
            report = kwargs.get("rep") if name == "testreport" else None
            if isinstance(report, pytest.TestReport):
                self.pytest_runtest_logreport(report)

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
                f"psweep: {exc}; the session stopped: its {session.count} records "
                "journaled before wait there for the next run (or 'psweep recover')"
            )
            if stop:
                pytest.exit(self.failure, returncode=pytest.ExitCode.INTERNAL_ERROR)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """An xdist worker died running a pset: its started record becomes its row."""
        if self.in_flight.pop(crashitem, None) is not None:
            self.counts["crashed"] += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Merge the journal into the database in one atomic write.

        Last, after xdist has stopped its workers: after a Ctrl-C they may have gone
        on finishing psets while they were stopped, and their reports came in.
        """
        if not self._started:  # a dry run
            return
        if self.session.writer is None and self.settings.shard is None:
            return  # the start failed
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
            self._journal_reports_left_by_xdist()
            # psets the user interrupted (Ctrl-C) did not crash: they get no row
            for pset_id, calc_session in self.in_flight.values():
                self.journal(journal.encode_cancel(pset_id), stop=False, session=calc_session)
        elif self.in_flight:
            self.counts["crashed"] += len(self.in_flight)
        self.in_flight.clear()
        if self.failure is not None:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        for calc_session in self._sessions():
            if self.settings.shard is not None:
                if not self._finish_shard(calc_session):
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            elif not self._finish(calc_session):
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if self.settings.report is not None and self.settings.shard is None:
            self._write_report(self.settings.report)

    def _write_report(self, path: Path) -> None:
        """--psweep-report: the databases this session wrote to, as one HTML page; a
        report that cannot be made is said, and changes nothing else."""
        from . import report

        frames = [s.written() for s in self._sessions() if s is self.session or s.count]
        frames = [frame for frame in frames if frame is not None]
        if not frames:
            return
        database = frames[0]
        for frame in frames[1:]:
            database = concat(database, frame)
        compared: dict[str, list[str]] = {}
        for sweep, verdicts in self.verdicts_by_sweep.items():
            compared[sweep] = [
                f"{verdicts['same']} same, {verdicts['differs']} differ, {verdicts['new']} new "
                f"(baseline {self.settings.compare})"
            ]
        for sweep, key, text in self._drift():
            compared.setdefault(sweep, []).append(f"{key}: {text}")
        try:
            written = report.write(database, path, f"psweep: {self.config.rootpath.name}", compared)
        except (PsweepError, OSError) as exc:
            self.report_note = f"psweep: no report: {exc}"
            return
        self.report_note = f"report: {written}"

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
        summary_file = os.environ.get(integrations.STEP_SUMMARY_ENV)
        hooked = bool(self.config.hook.pytest_psweep_finish.get_hookimpls())
        if self.settings.simulate or hooked or summary_file:
            self._finish_with_frames(session, summary_file)
        return True

    def _finish_shard(self, session: CalcSession) -> bool:
        """A shard leaves its rows in its own file under ``<calc_dir>/shards/``; False
        if they could not be left there as they should (the failure says why)."""
        if not session.journaling:
            return True  # its start failed: nothing ran
        self._write_manifest({}, session, {})  # a task that collected no psets ran too
        try:
            shard_file = session.finish_shard()
        except OSError as exc:
            self.failure = f"psweep: {session.journal_path} cannot be renamed: {exc}"
            return False
        except PsweepError as exc:  # its journal was taken: its rows are written again
            self.failure = f"psweep: {exc}"
            return False
        self.databases.append(shard_file or session.journal_path)
        for module in self.modules.get(session, {}):
            session.keep_module(self.config.rootpath / module, module)
        return True

    def _finish_with_frames(self, session: CalcSession, summary_file: str | None) -> None:
        """The look-ahead of a simulation, the finish hook and a CI job's summary, from
        the written database."""
        database = session.written()
        assert database is not None  # this session wrote rows
        new_rows = database[database["_run_id"] == self.settings.run.run_id]
        if self.settings.simulate:
            before = session.before()
            keys = list(row_keys(new_rows))
            self.lookahead.update(compare.lookahead(before, zip(keys, new_rows["_code_hash"])))
            names = [
                f"{key[0]}[{_params_text(row)}]"
                for key, row in zip(keys, new_rows.to_dict("records"))
            ]
            self.prediction += prediction(before, zip(keys, names))
        self.config.hook.pytest_psweep_finish(
            database=database, new_rows=new_rows, calc_dir=session.target.path
        )
        if summary_file:
            compared = None
            if self.verdicts:
                compared = "\n".join(
                    [self._verdicts(f"`{self.settings.compare}`")]
                    + [f"- `{sweep}` {key}: {text}" for sweep, key, text in self._drift()]
                )
            text = integrations.step_summary(new_rows, session.target.database, compared)
            with open(summary_file, "a") as fh:
                fh.write(text)

    def pytest_unconfigure(self) -> None:
        for session in self._sessions():
            session.close()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.counts or self.failure or self.lookahead):
            return
        if self.collect_only and self.config.get_verbosity() < 0:
            return  # node ids only
        terminalreporter.ensure_newline()  # else write_line ends the progress line late:
        terminalreporter.section("psweep")  # a stray blank line below the header
        write = terminalreporter.write_line
        for sweep, count in self.lookahead.items():
            parts = ", ".join(f"{count[kind]} {kind}" for kind in compare.LOOKAHEAD)
            write(f"look ahead: {sweep}: {parts}")
        for line in self.prediction:
            write(line)
        if self.waiting:
            target = self.session.target
            write(
                f"({self.waiting} of the rows counted wait in {target.journal_dir}, left by "
                f"an interrupted run: the next run merges them, or 'psweep recover "
                f"{target.path}')"
            )
        if self.waiting_in_shards:
            write(
                f"({self.waiting_in_shards} of the rows counted are in "
                f"{shards.folder(self.session.calc_dir)}, left by job-array shards: "
                f"'psweep merge {self.session.calc_dir.path}' puts them into the database)"
            )
        if self.failure:
            write(self.failure, red=True)
        elif self.counts:
            shown = OUTCOMES + (("crashed",) if self.counts["crashed"] else ())
            counts = ", ".join(f"{self.counts[outcome]} {outcome}" for outcome in shown)
            reruns = self.counts["rerun"]
            if reruns:  # attempts that were run again: each has a row, none is a pset
                counts += f" (and {reruns} rerun{'s' if reruns > 1 else ''})"
            where = ", ".join(map(str, self.databases or [self.session.target.database]))
            if self.settings.shard is not None:
                merges = " and ".join(
                    f"'psweep merge {s.calc_dir.path}'" for s in self._sessions() if s.count
                )
                merges = merges or "'psweep merge'"
                write(f"{where}: psets {counts}; into the database with {merges}")
            else:
                write(f"{where}: psets {counts}; {self.written} rows written")
            if self.interrupted:
                write(
                    "interrupted: the rows of the psets that finished are kept (above); "
                    "the psets that were running have none. Run the rest with "
                    "--psweep-skip-dups",
                    yellow=True,
                )
            for writer in [s.writer for s in self._sessions() if s.writer is not None]:
                if writer.recovered:
                    write(f"merged {writer.recovered} rows left by an interrupted session")
                for problem in writer.notes:
                    write(f"psweep: {problem}", red=True)
        if self.verdicts:
            write(self._verdicts(str(self.settings.compare)))
        for sweep, key, text in self._drift():
            write(f"  {sweep}: {key}: {text}")
        if self.report_note is not None:
            write(self.report_note, red=self.report_note.startswith("psweep: no report"))

    def _verdicts(self, baseline: str) -> str:
        """Regression mode's counts, for the terminal and for a CI job's summary."""
        counts = self.verdicts
        return (
            f"compared with {baseline}: {counts['same']} same, {counts['differs']} differ, "
            f"{counts['new']} new"
        )

    def _drift(self) -> Iterator[tuple[str, str, str]]:
        """Per sweep and key: how many psets differ, and by how much at most."""
        for (sweep, key), (count, abs_diff, rel_diff) in sorted(self.drift.items()):
            largest = (
                f"largest abs diff {abs_diff:.3g}, rel diff {rel_diff:.3g}"
                if abs_diff is not None and rel_diff is not None
                else "values that are not numbers"
            )
            yield sweep, key, f"{count} psets differ, {largest}"

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)


def _params_text(row: dict[str, Any]) -> str:
    """A simulated row's parameters (it has no results): ``a=1-b=2``."""
    return "-".join(f"{key}={value}" for key, value in public_values(row).items())


def _larger(old: float | None, new: float | None) -> float | None:
    if new is None:
        return old
    return new if old is None or new > old else old


def import_root(module: Path) -> str:
    """The folder a test module is imported from (pytest's default ``prepend`` import
    mode): above its topmost package, or its own folder. Under xdist the controller
    collects nothing, so its ``sys.path`` lacks these; the writer needs them to
    decode rows holding objects of classes from the sweep modules."""
    folder = module.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return str(folder)


def _workers(config: pytest.Config) -> int:
    """How many xdist workers run psets (-n N, or one per --tx)."""
    numprocesses = getattr(config.option, "numprocesses", None)
    if isinstance(numprocesses, int) and numprocesses > 0:
        return numprocesses
    return max(1, len(getattr(config.option, "tx", None) or ()))


def _xdist_active(config: pytest.Config) -> bool:
    """Does this process control xdist workers? (``dist`` is missing under -p no:xdist)"""
    return getattr(config.option, "dist", "no") != "no" or bool(
        getattr(config.option, "numprocesses", None)
    )
