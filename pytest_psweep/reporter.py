"""What a session says: the header, progress, the dry run's look-ahead, the summary,
a CI job's summary and the HTML report (as xdist's ``TerminalDistReporter`` beside
its ``DSession``).

It runs in the process that owns the calc dirs, beside the ``RowSink``, which tells
it of each calc dir it opens, each record that arrives and each calc dir it
finished. Where it reads a database (the look-ahead and estimates before psets run,
the finish hook and job summary after), pandas loads in this process: only for a
dry run, on a terminal, or when a hook, a job summary or a report asks (README,
"Architecture").
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from . import compare, integrations, shards
from .calcdir import Database
from .database import concat, row_keys, rows_to_frame
from .names import counted
from .options import usage_errors
from .params import public_values
from .progress import Progress, estimate, prediction, pset_id_of
from .session import CalcSession
from .settings import Options
from .sweeps import SweepPset, header_counts, sweep_pset
from .wire import PsetRecord, SweepCount

if TYPE_CHECKING:
    from .sink import RowSink

OUTCOMES = ("passed", "failed", "skipped")


class Reporter:
    """The session's lines on the terminal, and its summaries."""

    def __init__(self, config: pytest.Config, options: Options, sink: RowSink) -> None:
        self.config = config
        self.options = options
        self.sink = sink
        self.collect_only = bool(config.option.collectonly)
        self.compared = Compared()  # regression mode's verdicts and drift
        self.lookahead: dict[str, collections.Counter[str]] = {}
        self.waiting = 0  # dry run: rows that wait in journals to be merged
        self.waiting_in_shards = 0  # dry run: rows that job-array shards left
        self.prediction: list[str] = []  # dry run: how long the psets took before
        self.progress: Progress | None = None  # on a terminal, while psets run
        self.report_note: str | None = None  # where --psweep-report went, or why not

    def say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    # -- before psets run ----------------------------------------------------------------

    def opened(self, session: CalcSession) -> None:
        """A calc dir was opened: what it merged of interrupted runs."""
        recovery = session.recovery
        if recovery.saved:
            self.say(
                f"psweep: merged {counted(recovery.saved, 'row')} left by an interrupted "
                f"session into {session.calc_dir.database}"
            )
        if session is self.sink.session:
            for problem in recovery.deferred:
                self.say(f"psweep: {problem}; tried again at the end of this session")
            for problem in recovery.quarantined:
                self.say(f"psweep: {problem}")

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
            # a calc dir is looked at, never opened
            looked_at = self.sink.session if calc_dir is None else CalcSession(calc_dir, "")
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

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> list[str]:
        """Serially: the header, and on a terminal what these psets took before."""
        if self.collect_only and self.config.get_verbosity() < 0:
            return []  # node ids only: the output of --co -q is fed back to pytest
        counts = self.sink.collected or header_counts(items, self.sink.state)
        lines = self._header(counts)
        if self.progress is not None and self.sink.session.target.database.exists():
            # before the first pset finishes: what these psets took when they last passed
            pairs = [(p.key, item.nodeid) for p, item in zip(map(sweep_pset, items), items) if p]
            with usage_errors():
                expected = prediction(self.sink.session.before(), pairs)
            lines += [f"psweep: {line}" for line in expected[:1]]
        return lines

    def collected(self, counts: list[SweepCount]) -> None:
        """Under xdist, a worker's first report: the header, and on a terminal an
        estimate from each sweep's mean runtime of earlier passed rows."""
        for line in self._header(counts):
            self.say(line)
        if self.progress is None or not self.sink.session.target.database.exists():
            return
        per_sweep = {count.sweep: count.psets * count.cases for count in counts}
        with usage_errors():
            expected = estimate(self.sink.session.before(), per_sweep, _workers(self.config))
        if expected is not None:
            self.say(f"psweep: {expected}")

    def _header(self, counts: list[SweepCount]) -> list[str]:
        """Where rows go, and per sweep how many psets (times how many cases of its
        other parametrizations) this session has."""
        self._expect(sum(count.psets * count.cases for count in counts))
        shard = self.options.shard
        chosen = ", ".join(
            (["--psweep-select"] if self.options.select is not None else [])
            + ([f"--psweep-shard={shard.label}"] if shard is not None else [])
        )
        lines = [
            f"psweep: {c.sweep}: {counted(c.psets, 'pset')}"
            + (f" × {c.cases} cases" if c.cases > 1 else "")
            + (f" (of {c.total}: {chosen})" if c.total is not None else "")
            + (f", calc dir {c.calc_dir}" if c.calc_dir is not None else "")
            for c in counts
        ]
        if not lines:
            return []
        session = self.sink.session
        where = f"database {session.target.database}"
        if shard is not None:
            where = f"shard {shard.label}, rows to {session.journal_path}"
        if self.collect_only:
            return [f"psweep: {where} (dry run: nothing runs or is written)", *lines]
        return [f"psweep: run {self.options.run_id}, {where}", *lines]

    def _on_terminal(self) -> bool:
        """Progress is shown: a run (not a dry one) on a terminal at normal verbosity,
        as pytest's own progress."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return not (
            self.collect_only
            or not self.options.progress_seconds
            or reporter is None
            or not getattr(reporter, "isatty", False)
            or self.config.get_verbosity() < 0
        )

    def _expect(self, total: int) -> None:
        """Progress lines: ``total`` psets (times cases) are about to run."""
        if not total or not self._on_terminal():
            return
        self.progress = Progress(self.options.progress_seconds)
        self.progress.total = total

    # -- while psets run -----------------------------------------------------------------

    def record(self, record: PsetRecord) -> None:
        """A record arrived: progress, and regression mode's verdicts."""
        if record.outcome == "started":
            if self.progress is not None:
                self.progress.started()
            return
        if self.progress is not None and record.outcome != "rerun":
            said = self.progress.finished(record.outcome in ("failed", "crashed"))
            if said is not None:
                self.say(said)
        self.compared.add(record)

    # -- the end -------------------------------------------------------------------------

    def finished(self, session: CalcSession) -> None:
        """A calc dir's rows are written: the look-ahead of a simulation, the finish
        hook and a CI job's summary, from the written database (read only if one of
        them is asked for)."""
        summary_file = os.environ.get(integrations.STEP_SUMMARY_ENV)
        hooked = bool(self.config.hook.pytest_psweep_finish.get_hookimpls())
        if not (self.options.simulate or hooked or summary_file):
            return
        database = session.written()
        assert database is not None  # this session wrote rows
        new_rows = database[database["_run_id"] == self.options.run_id]
        if self.options.simulate:
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
            if self.compared.verdicts:
                compared = "\n".join(
                    [self.compared.line(f"`{self.options.compare}`")]
                    + [
                        f"- `{sweep}` {key}: {text}"
                        for sweep, key, text in self.compared.drift_lines()
                    ]
                )
            text = integrations.step_summary(new_rows, session.target.database, compared)
            with open(summary_file, "a") as fh:
                fh.write(text)

    def write_report(self, sink: RowSink) -> None:
        """--psweep-report: the databases this session wrote to, as one HTML page; a
        report that cannot be made is said, and changes nothing else."""
        path = self.options.report
        if path is None:
            return
        from . import report

        sessions = [s for s in sink.sessions() if s is sink.session or s.count]
        frames = [frame for frame in (s.written() for s in sessions) if frame is not None]
        if not frames:
            return
        database = frames[0]
        for frame in frames[1:]:
            database = concat(database, frame)
        compared: dict[str, list[str]] = {}
        for sweep, verdicts in self.compared.by_sweep.items():
            compared[sweep] = [
                f"{verdicts['same']} same, {verdicts['differs']} differ, {verdicts['new']} new "
                f"(baseline {self.options.compare})"
            ]
        for sweep, key, text in self.compared.drift_lines():
            compared.setdefault(sweep, []).append(f"{key}: {text}")
        try:
            written = report.write(database, path, f"psweep: {self.config.rootpath.name}", compared)
        except Exception as exc:  # the rows are written: a report problem only warns
            self.report_note = f"psweep: no report: {type(exc).__name__}: {exc}"
            return
        self.report_note = f"report: {written}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        sink = self.sink
        if not (sink.counts or sink.failure or self.lookahead):
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
        self._waiting(write)
        if sink.failure:
            write(sink.failure, red=True)
        elif sink.counts:
            self._counts(write)
        if self.compared.verdicts:
            write(self.compared.line(str(self.options.compare)))
        for sweep, key, text in self.compared.drift_lines():
            write(f"  {sweep}: {key}: {text}")
        if self.report_note is not None:
            write(self.report_note, red=self.report_note.startswith("psweep: no report"))

    def _waiting(self, write: Any) -> None:
        """The dry run: rows counted that are not in the database yet."""
        session = self.sink.session
        if self.waiting:
            target = session.target
            write(
                f"({self.waiting} of the rows counted wait in {target.journal_dir}, left by "
                f"an interrupted run: the next run merges them, or 'psweep recover "
                f"{target.path}')"
            )
        if self.waiting_in_shards:
            write(
                f"({self.waiting_in_shards} of the rows counted are in "
                f"{shards.folder(session.calc_dir)}, left by job-array shards: "
                f"'psweep merge {session.calc_dir.path}' puts them into the database)"
            )

    def _counts(self, write: Any) -> None:
        """The psets by outcome, where their rows went, and what else happened."""
        sink = self.sink
        counts = outcome_counts(sink.counts)
        where = ", ".join(map(str, sink.databases or [sink.session.target.database]))
        if self.options.shard is not None:
            merges = " and ".join(
                f"'psweep merge {s.calc_dir.path}'" for s in sink.sessions() if s.count
            )
            merges = merges or "'psweep merge'"
            write(f"{where}: psets {counts}; into the database with {merges}")
        else:
            write(f"{where}: psets {counts}; {counted(sink.written or 0, 'row')} written")
        if sink.interrupted:
            write(
                "interrupted: the rows of the psets that finished are kept (above); "
                "the psets that were running have none. Run the rest with "
                "--psweep-skip-dups",
                yellow=True,
            )
            moved = sink.state.moved  # interrupted psets' folders, moved out of the way
            if moved:
                write(
                    f"the files of {counted(len(moved), 'interrupted pset')} were moved to "
                    f"{moved[0].parent}",
                    yellow=True,
                )
        for writer in [s.writer for s in sink.sessions() if s.writer is not None]:
            if writer.recovered:
                write(f"merged {counted(writer.recovered, 'row')} left by an interrupted session")
            for problem in writer.notes:
                write(f"psweep: {problem}", red=True)


class Compared:
    """Regression mode's tally: verdicts ("new", "same", "differs") overall and per
    sweep, and per sweep and result key how many psets drifted and by how much."""

    def __init__(self) -> None:
        self.verdicts: collections.Counter[str] = collections.Counter()
        self.by_sweep: dict[str, collections.Counter[str]] = {}
        # (sweep, key) -> [psets that differ, largest abs diff, largest rel diff]
        self.drift: dict[tuple[str, str], list[Any]] = {}

    def add(self, record: PsetRecord) -> None:
        if record.verdict is not None:
            self.verdicts[record.verdict] += 1
            by_sweep = self.by_sweep.setdefault(record.sweep, collections.Counter())
            by_sweep[record.verdict] += 1
        for key, abs_diff, rel_diff in record.drift:
            drift = self.drift.setdefault((record.sweep, key), [0, None, None])
            drift[0] += 1
            drift[1] = _larger(drift[1], abs_diff)
            drift[2] = _larger(drift[2], rel_diff)

    def line(self, baseline: str) -> str:
        """The counts, for the terminal and for a CI job's summary."""
        counts = self.verdicts
        return (
            f"compared with {baseline}: {counts['same']} same, {counts['differs']} differ, "
            f"{counts['new']} new"
        )

    def drift_lines(self) -> Iterator[tuple[str, str, str]]:
        """Per sweep and key: how many psets differ, and by how much at most."""
        for (sweep, key), (count, abs_diff, rel_diff) in sorted(self.drift.items()):
            largest = (
                f"largest abs diff {abs_diff:.3g}, rel diff {rel_diff:.3g}"
                if abs_diff is not None and rel_diff is not None
                else "values that are not numbers"
            )
            yield sweep, key, f"{counted(count, 'pset')} differ, {largest}"


def _params_text(row: dict[str, Any]) -> str:
    """A simulated row's parameters (it has no results) as its node id shows them."""
    return pset_id_of(public_values(row))


def _larger(old: float | None, new: float | None) -> float | None:
    if new is None:
        return old
    return new if old is None or new > old else old


def _workers(config: pytest.Config) -> int:
    """How many xdist workers run psets (-n N, or one per --tx)."""
    numprocesses = getattr(config.option, "numprocesses", None)
    if isinstance(numprocesses, int) and numprocesses > 0:
        return numprocesses
    return max(1, len(getattr(config.option, "tx", None) or ()))


def outcome_counts(counts: collections.Counter[str]) -> str:
    """``2 passed, 3 failed (1 expected by xfail, 1 in setup), 0 skipped``: the psets
    by their rows' outcome, with why pytest's line counts some failed ones otherwise."""
    shown = OUTCOMES + (("crashed",) if counts["crashed"] else ())
    said = [f"{counts[outcome]} {outcome}" for outcome in shown]
    why = [  # failed psets that pytest counts as xfailed or as errors
        f"{counts[key]} {reason}"
        for key, reason in (("failed: xfail", "expected by xfail"), ("failed: setup", "in setup"))
        if counts[key]
    ]
    if why:
        said[1] += f" ({', '.join(why)})"
    if counts["skipped: xfail"]:  # xfail(run=False), pytest.xfail in a fixture
        said[2] += f" ({counts['skipped: xfail']} expected by xfail)"
    more = [
        counted(counts[key], noun) + where
        for key, noun, where in (
            ("rerun", "rerun", ""),  # attempts run again: each has a row, none is a pset
            ("rerun: teardown", "rerun", " in teardown"),  # pytest counts these reruns too
            ("error: teardown", "error", " in teardown"),  # and a failed teardown as an error
        )
        if counts[key]
    ]
    if more:
        said[-1] += f" (and {', '.join(more)})"
    return ", ".join(said)
