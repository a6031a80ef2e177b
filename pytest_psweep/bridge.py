"""The xdist bridge: what the controller hands its workers, and what it hears of
them that pytest's own hooks do not say (as xdist's ``DSession`` beside its
reporter). Registered only when xdist is there; each hook is xdist's.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from . import mounts
from .calcdir import Database
from .database import latest_passed, row_keys, rows_to_frame
from .options import usage_errors
from .session import CalcSession
from .settings import Options, State
from .sink import RowSink, copies
from .wire import SweepCount


class XdistBridge:
    """The controller's side of its xdist workers."""

    def __init__(self, config: pytest.Config, options: Options, state: State, sink: RowSink):
        self.config = config
        self.options = options
        self.state = state
        self.sink = sink
        self.read_ahead = False  # read_ahead done (once for all workers)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand what was made here once to an xdist worker, in builtin types: the run
        id, the calc dir, and what the options need from the database (a calc dir
        that does not exist yet, or is copied by --psweep-simulate or --psweep-backup,
        is opened now only if they need it, else when the first row arrives)."""
        options, state = self.options, self.state
        needed = options.skip_dups or options.compare is not None or options.shard is not None
        has_database = self.sink.session.target.has_database()
        if not options.dry_run and needed and copies(options) and options.shard is None:
            if not self.read_ahead:  # no copy before a sweep runs
                read_ahead(options, state, self.sink.session)
                self.read_ahead = True
        elif not options.dry_run and (needed or (has_database and not copies(options))):
            # workers run psets from now on: a database that cannot take their rows
            # stops the session before the first one (the sink's runtestloop)
            self.sink.start()
        node.workerinput["psweep_run_id"] = options.run_id
        node.workerinput["psweep_calc_dir"] = str(self.sink.session.target.path)
        node.workerinput["psweep_done"] = sorted(state.done)
        node.workerinput["psweep_baseline"] = pickle.dumps(state.baseline)
        node.workerinput["psweep_provenance"] = state.provenance
        node.workerinput["psweep_invocation_dir"] = str(self.config.invocation_params.dir)
        spec = getattr(node.gateway, "spec", None)
        if not getattr(spec, "popen", False) or getattr(spec, "chdir", None):
            # a worker that may run in another folder (ssh, a chdir) knows the study by
            # this token in its own calc dir, under whatever path it mounts it
            self.sink.start()
            node.workerinput["psweep_study"] = mounts.token(self.sink.session.target.path)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """An xdist worker that runs in another folder than the controller's, and
        found no token of this study there (``mounts.check_worker``), stopped before
        it collected: other sweeps or stale copies would run into this calc dir.
        A worker that collected only sweeps whose psets were all left out says so
        (the header's lines); one that pytest.exit ended names the pset it ran: no
        row for it."""
        message = mounts.refused(node)
        if message is not None:
            pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
        output = getattr(node, "workeroutput", {})
        sink = self.sink
        counts = output.get("psweep_counts")
        if counts and not sink.collected:  # sweeps whose psets were all left out
            sink.collected = [SweepCount(*count) for count in counts]
            if sink.reporter is not None:
                sink.reporter.collected(sink.collected)
        interrupted = output.get("psweep_interrupted")
        if interrupted and sink.started:  # pytest.exit in a pset: no row, as serially
            sink.take_back_in_flight(only=interrupted)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """An xdist worker died running a pset: its started record becomes its row."""
        self.sink.crashed(crashitem)


def read_ahead(options: Options, state: State, session: CalcSession) -> None:
    """What the workers need from the database (the done psets, the baseline) read
    from the calc dir without opening it: under --psweep-simulate or --psweep-backup
    that copies it, and no sweep is known to run yet. The rows that interrupted runs
    left in journals (which opening would merge) are done psets too."""
    session = CalcSession(session.calc_dir.path, "")  # looked at, never opened
    with usage_errors():
        if options.skip_dups:
            state.done |= session.done()
            waiting = Database(session.calc_dir).waiting_rows()
            latest = latest_passed(rows_to_frame(waiting)) if waiting else None
            if latest is not None:
                state.done |= set(row_keys(latest))
        if options.compare is not None:
            state.baseline.update(session.baseline(options.compare))
