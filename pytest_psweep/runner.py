"""Running one pset: the worker side of the plugin, in every process that runs items
(the serial pytest process, or each xdist worker).

A leaf, as xdist's ``remote.py``: it imports nothing of the controller. A pset
becomes a row with ``rows.Run``; the row rides on the item's report to the one
process that owns the calc dir as a ``wire.PsetRecord``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import compare, hints, integrations, journal, mounts
from .calcdir import CalcDir
from .copies import SKIPPED, move_interrupted
from .errors import PsweepError
from .names import ATTEMPT_KEY, CASE_KEY
from .rows import Run
from .settings import Options, State
from .sweeps import ATTEMPTS, RUNNING, SweepInfo, SweepPset, header_counts, sweep_pset
from .wire import TEARDOWN_ERROR_ATTR, PsetRecord, SweepCount, attach_counts

_ERROR_CHARS = 2000
CRASHED = (
    "the process running this pset died before it finished (a crash, a kill, "
    "os._exit, out of memory, a killed xdist worker or session)"
)


class SweepRunner:
    """Runs sweep items in every process that runs tests (serial, or an xdist worker).

    Registered only under ``--psweep``: without it, pytest's own tests pay nothing.
    Each hook returns at once for an item that is not a sweep's.
    """

    def __init__(self, options: Options, state: State) -> None:
        self.options = options
        self.state = state
        self.run = Run(str(options.target), options.run_id)
        self.row_hook: bool | None = None  # does any conftest implement pytest_psweep_row?
        self.counts: list[SweepCount] | None = None  # an xdist worker's, until sent
        self.own_runs: dict[str, Run] = {}  # by the calc dir of sweeps that have one
        self.in_setup: SweepPset | None = None  # its started record is not sent yet
        self.in_call: str | None = None  # the pset id whose started record is sent
        self.interrupted: str | None = None  # ... when pytest.exit or Ctrl-C came

    def running(self, item: pytest.Item) -> SweepPset | None:
        """A sweep item's pset with its book-keeping set, once per run of the item;
        None for other items.

        The function and every fixture that requests ``pset`` get this same dict
        (a parameter shared by stacked parametrizations, given back its parameters
        at each teardown).
        """
        pset = item.stash.get(RUNNING, None)
        if pset is None:
            pset = sweep_pset(item)
            if pset is None:
                return None
            pset.truth = self.run_of(pset.sweep).bookkeep(pset.value, pset.digest)
            # each run of the item (pytest-rerunfailures' reruns) is an attempt
            pset.truth[ATTEMPT_KEY] = item.stash.get(ATTEMPTS, 0) + 1
            item.stash[ATTEMPTS] = pset.truth[ATTEMPT_KEY]
            item.stash[RUNNING] = pset
        return pset

    def run_of(self, sweep: SweepInfo) -> Run:
        """The session's run, or for a sweep with a calc dir of its own a run with the
        same id whose rows name that calc dir (``_calc_dir``, ``pset_dir``)."""
        if sweep.calc_dir is None:
            return self.run
        run = self.own_runs.get(sweep.calc_dir)
        if run is None:
            calc_dir = CalcDir(Path(sweep.calc_dir))
            target = calc_dir.simulate if self.options.simulate else calc_dir
            run = self.own_runs[sweep.calc_dir] = Run(str(target.path), self.run.run_id)
        return run

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """An xdist worker counts the psets it collected for the controller's header
        (the controller collects nothing), sent with its first report."""
        if self.options.worker and not self.options.dry_run:
            counts = header_counts(session.items, self.state)
            self.counts = counts if any(count.psets for count in counts) else None
            workeroutput = getattr(session.config, "workeroutput", None)
            if self.counts is None and counts and workeroutput is not None:
                # no pset to run, so no report to carry them: told when the worker ends
                workeroutput["psweep_counts"] = [tuple(count) for count in counts]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Before any fixture: prepare the pset's row, or skip a pset that is done
        (--psweep-skip-dups; a skipped setup makes no row, teardown restores the pset)."""
        pset = self.running(item)
        if pset is None:
            return
        self.in_setup = pset
        if pset.clash is not None:
            pytest.fail(pset.clash, pytrace=False)
        if self.options.skip_dups and pset.key in self.state.done:
            pytest.skip("already in database")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Call a sweep function and merge its returned dict into the row (no return
        warning)."""
        __tracebackhide__ = True  # a failed pset shows the user's code, not ours
        pset = self.running(pyfuncitem)
        if pset is None:
            return None
        if self.options.simulate:
            return True
        funcargs = pyfuncitem.funcargs
        function = pyfuncitem.obj
        kwargs = {name: funcargs[name] for name in pset.sweep.argnames}
        try:
            pset.returned = self.run.call(
                lambda: function(**kwargs), pset.value, pset.truth, pyfuncitem.nodeid
            )
        except PsweepError as exc:  # what it returned: show the user's function
            exc.add_note(hints.source_of(function))
            raise
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the finished row (pickled, so any value crosses to an xdist
        controller), and, once its setup passed, the pset's "started" record: a pset
        whose process dies before its row arrives gets a ``crashed`` row from it."""
        report = yield
        if self.options.dry_run:  # --setup-plan, --setup-only: nothing ran
            return report
        if self.counts is not None:
            attach_counts(report, self.counts)
            self.counts = None
        when = call.when
        if when == "call" or (when == "setup" and report.failed):
            pset = self.running(item)
            if pset is not None:
                self.attach_row(item, pset, call, report)
                self.in_call = None
        elif when == "setup":
            pset = self.running(item)
            self.in_setup = None
            if pset is not None and report.passed:
                self.attach_started(pset, report)
                self.in_call = pset.truth["_pset_id"]
            elif pset is not None:  # skipped before it ran (a mark, --psweep-skip-dups):
                # no row, but counted as the skipped pset it is
                sweep, digest, case = pset.key
                PsetRecord(sweep, digest, case, "skipped", "", b"").attach(report)
                folder = pset_folder(pset)  # a pset_dir made before the skip
                move_interrupted(folder.parent, folder.name, into=SKIPPED)
        elif when == "teardown":
            pset = item.stash.get(RUNNING, None)
            if pset is not None:
                if report.failed:  # pytest counts an error more: the summary says why
                    setattr(report, TEARDOWN_ERROR_ATTR, True)
                # the row has left with its report and teardown is over: the pset goes
                # back to its parameters, so 100k items do not keep 100k rows in memory
                del item.stash[RUNNING]
                pset.restore()
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        """A Ctrl-C while a pset's fixtures were set up: it gets no row (nothing
        announced it to the sink yet), and its ``pset_dir`` is moved out of the way."""
        pset, self.in_setup = self.in_setup, None
        if pset is not None:
            folder = pset_folder(pset)
            moved = move_interrupted(folder.parent, folder.name)
            if moved is not None:
                self.state.moved.append(moved)
        self.interrupted, self.in_call = self.in_call, None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """An xdist worker tells its controller the pset that pytest.exit (or a Ctrl-C
        to the worker) interrupted: it gets no row, as serially, not a crashed one."""
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None and self.interrupted is not None:
            workeroutput["psweep_interrupted"] = [self.interrupted]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """An attempt that pytest-rerunfailures runs again comes back as ``rerun``: its
        row says so. Re-encoded here, in the process that ran the pset (a controller
        may not import the classes of its values), before any other plugin sees it."""
        if str(report.outcome) == "rerun":  # not one of pytest's own outcomes
            carried = PsetRecord.take(report)
            if carried is not None and carried.outcome != "started":
                payload = journal.with_outcome(carried.payload, "rerun")
                carried = carried._replace(payload=payload, outcome="rerun")
            if carried is not None:
                carried.attach(report)
        return (yield)

    def row(self, pset: SweepPset, outcome: str, error: str | None) -> dict[str, Any]:
        """A copy of the pset's row as it stands, with the session's columns."""
        row = self.run.finish(dict(pset.value), pset.truth)
        for name, value in pset.case.items():  # what the function returned comes first
            row.setdefault(name, value)
        if pset.case_hash:
            row[CASE_KEY] = pset.case_hash
        row["_sweep"] = pset.sweep.sweep_id
        row["_outcome"] = outcome
        row["_error"] = error
        row["_code_hash"] = pset.sweep.code_hash
        row.update(self.state.provenance)
        return row

    def attach_started(self, pset: SweepPset, report: pytest.TestReport) -> None:
        row = self.row(pset, "crashed", CRASHED)
        payload, _ = journal.encode_row_keeping(row, journal.STARTED)
        self.record(pset, "started", row, payload).attach(report)

    def record(
        self,
        pset: SweepPset,
        outcome: str,
        row: dict[str, Any],
        payload: bytes,
        verdict: str | None = None,
        drift: tuple[tuple[str, float | None, float | None], ...] = (),
    ) -> PsetRecord:
        sweep, digest, case = pset.key
        return PsetRecord(
            sweep,
            digest,
            case,
            outcome,
            row["_pset_id"],
            payload,
            pset.sweep.calc_dir,
            verdict,
            drift,
        )

    def attach_row(
        self,
        item: pytest.Item,
        pset: SweepPset,
        call: pytest.CallInfo[None],
        report: pytest.TestReport,
    ) -> None:
        options = self.options
        outcome, error = _outcome(call, report)
        row = self.row(pset, outcome, error)  # a copy travels
        if call.when == "call":
            row.update(integrations.benchmark_columns(item))
        verdict = None
        if self.row_hook is None:  # known once items run: conftests load at collection
            self.row_hook = bool(item.config.hook.pytest_psweep_row.get_hookimpls())
        if self.row_hook:
            item.ihook.pytest_psweep_row(row=row, item=item)
        drift: tuple[tuple[str, float | None, float | None], ...] = ()
        if options.compare is not None and outcome == "passed" and not options.simulate:
            verdict, message, drift = _compare_row(options, self.state, pset, row)
            if message:
                row["_outcome"] = outcome = "failed"
                row["_error"] = f"compare: {message.splitlines()[0]}"
                report.outcome = "failed"
                report.longrepr = f"{item.nodeid}: {message}"
        payload, problem = journal.encode_row_keeping(row)
        if problem is not None:  # fail this pset only; the rest of its row is kept
            outcome = "failed"
            payload, _ = journal.encode_row_keeping(
                {**row, "_outcome": outcome, "_error": f"PsweepError: {problem}"}
            )
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: {problem}"
        self.record(pset, outcome, row, payload, verdict, drift).attach(report)
        if options.html:
            integrations.attach_html(report, pset.params, row, pset.returned)
        if options.junitxml:
            integrations.attach_properties(item, pset.params, row, pset.returned)


def pset_folder(pset: SweepPset) -> Path:
    """Where the pset's ``pset_dir`` is, in this process's view of the calc dir."""
    return Path(mounts.local(pset.truth["_calc_dir"]), pset.truth["_pset_id"])


def _compare_row(
    options: Options, state: State, pset: SweepPset, row: dict[str, Any]
) -> tuple[str, str | None, tuple[tuple[str, float | None, float | None], ...]]:
    """("new" | "same" | "differs", the failure message or None, the differences
    as (key, abs diff, rel diff) in builtin types).

    Compared: what the function returned. Not compared: the rest of the row
    (parameters, other parametrizations, what row hooks and other plugins add)."""
    baseline = state.baseline.get(pset.key)
    if baseline is None:
        return "new", None, ()
    found = compare.differences(
        baseline,
        row,
        keys=pset.returned,
        ignore=set(row).difference(pset.returned),
        rtol=options.rtol if pset.sweep.rtol is None else pset.sweep.rtol,
        atol=options.atol if pset.sweep.atol is None else pset.sweep.atol,
        per_key=pset.sweep.tolerances,
    )
    if not found:
        return "same", None, ()
    keys = ", ".join(d.key for d in found)
    rules = compare.describe(pset.sweep.tolerances)  # per-result tolerances, said
    message = (
        f"results differ from baseline {options.compare} "
        f"(row {baseline.get('_pset_id')}) in {keys}{'; ' + rules if rules else ''}\n"
        f"{compare.diff_table(found)}"
    )
    drift = tuple((d.key, _number(d.abs_diff), _number(d.rel_diff)) for d in found)
    return "differs", message, drift


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _outcome(call: pytest.CallInfo[None], report: pytest.TestReport) -> tuple[str, str | None]:
    """The row's ``_outcome`` and ``_error``: did the pset's function succeed?"""
    excinfo = call.excinfo
    error = None
    if excinfo is not None and not isinstance(excinfo.value, pytest.skip.Exception):
        error = f"{excinfo.typename}: {excinfo.value}"[:_ERROR_CHARS]
    if hasattr(report, "wasxfail"):  # xfail: the function's own success decides
        return ("failed" if error else "passed"), error
    if report.failed and error is None:
        error = str(report.longrepr)[:_ERROR_CHARS]
    return report.outcome, error
