"""The xdist bridge: what the controller hands its workers, and what it hears of
them that pytest's own hooks do not say (as xdist's ``DSession`` beside its
reporter). Registered only when xdist is there; each hook is xdist's.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from .settings import Options, State
from .sink import RowSink


class XdistBridge:
    """The controller's side of its xdist workers."""

    def __init__(self, config: pytest.Config, options: Options, state: State, sink: RowSink):
        self.config = config
        self.options = options
        self.state = state
        self.sink = sink

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand what was made here once to an xdist worker, in builtin types: the run
        id, the calc dir, and what the options need from the database (a calc dir
        that does not exist yet is made now only if they need it, else when the
        first row arrives)."""
        options, state = self.options, self.state
        if options.skip_dups or options.compare is not None or options.shard is not None:
            self.sink.start()
        node.workerinput["psweep_run_id"] = options.run_id
        node.workerinput["psweep_calc_dir"] = str(self.sink.session.target.path)
        node.workerinput["psweep_done"] = sorted(state.done)
        node.workerinput["psweep_baseline"] = pickle.dumps(state.baseline)
        node.workerinput["psweep_provenance"] = state.provenance

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        """An xdist worker runs where the controller was started, or it would run other
        sweeps (stale copies an ssh worker finds in its home) into this calc dir: an
        error naming both places, never silent rows."""
        here = str(self.config.invocation_params.dir)
        there = node.workerinfo.get("cwd")
        if there is not None and there != here:
            pytest.exit(
                f"psweep: xdist worker {node.gateway.id} runs in {there}, the controller in "
                f"{here}: it would collect other sweeps or psets. Start it in the study's "
                f"folder on a shared filesystem: --tx ssh=HOST//chdir={here} "
                "(--rsyncdir is not needed)",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """An xdist worker died running a pset: its started record becomes its row."""
        self.sink.crashed(crashitem)
