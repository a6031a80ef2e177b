"""Psets in flight in the process that owns the calc dirs, and what a Ctrl-C does
to them: a pset whose started record is journaled and whose row has not come is
``crashed`` if its process died, and taken back (no row, its folder moved to
``<calc_dir>/interrupted/``) if the user interrupted it.

Also the two pieces of Ctrl-C handling the sink needs around it: deferring a
Ctrl-C while a record is journaled, and the reports xdist's controller left unread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .copies import move_interrupted
from .session import CalcSession


class InFlight:
    """The psets started and not finished, by node id; and those taken back at a
    Ctrl-C, whose rows may still come (their reports waited in xdist's queue)."""

    def __init__(self, moved: list[Path]) -> None:
        self.running: dict[str, tuple[str, CalcSession]] = {}  # node id -> pset id
        self.taken_back: dict[str, Path | None] = {}  # pset id -> where its folder went
        self.moved = moved  # interrupted psets' folders, moved out of the way
        # taken back while an xdist worker may still run them: moved at the end
        self.unmoved: dict[str, CalcSession] = {}

    def __len__(self) -> int:
        return len(self.running)

    def started(self, nodeid: str, pset_id: str, session: CalcSession) -> None:
        self.running[nodeid] = (pset_id, session)

    def finished(self, nodeid: str, pset_id: str) -> None:
        """Its row came: a pset taken back at a Ctrl-C gets its folder back where its
        row says it is."""
        self.running.pop(nodeid, None)
        self.unmoved.pop(pset_id, None)  # its folder is its row's
        if pset_id not in self.taken_back:
            return
        moved = self.taken_back.pop(pset_id)
        if moved is not None:
            try:
                moved.rename(moved.parent.parent / pset_id)
                self.moved.remove(moved)
            except OSError:
                pass  # it stays in interrupted/, as the summary says

    def crashed(self, nodeid: str) -> bool:
        """A worker died running this item: is its started record its row?"""
        return self.running.pop(nodeid, None) is not None

    def take_back(
        self,
        cancel: Callable[[str, CalcSession], None],
        move: bool = True,
        only: list[str] | None = None,
    ) -> None:
        """Psets the user interrupted did not crash: ``cancel`` journals that they get
        no row, and the files they began are moved out of the way (no folder in the
        calc dir without its row). ``move=False``: an xdist worker may still run them
        (a Ctrl-C to the controller alone), writing into their folders: moved by
        ``move_unmoved`` once the workers have stopped. ``only``: these pset ids."""
        for nodeid, (pset_id, session) in list(self.running.items()):
            if only is not None and pset_id not in only:
                continue
            del self.running[nodeid]
            cancel(pset_id, session)
            self.taken_back[pset_id] = None
            if move:
                self._move(pset_id, session)
            else:
                self.unmoved[pset_id] = session

    def move_unmoved(self) -> None:
        """The folders of psets taken back whose rows never came, out of the way."""
        for pset_id, session in self.unmoved.items():
            self._move(pset_id, session)
        self.unmoved.clear()

    def _move(self, pset_id: str, session: CalcSession) -> None:
        moved = move_interrupted(session.target.path, pset_id)
        self.taken_back[pset_id] = moved
        if moved is not None:
            self.moved.append(moved)

    def clear(self) -> None:
        self.running.clear()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A Ctrl-C (SIGINT) that comes inside is raised when the block is done (in the
    main thread; elsewhere Python delivers no signal anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    previous = previous if previous is not None else signal.default_int_handler
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def reports_left_by_xdist(config: pytest.Config) -> Iterator[pytest.TestReport]:
    """xdist's controller stops reading its workers' events at a Ctrl-C, while the
    workers go on finishing psets until it has stopped them; the reports that came in
    meanwhile wait in its queue, each carrying a row.

    xdist has no hook for them: its ``DSession.queue`` holds the events as
    (name, kwargs) pairs, a test report as ("testreport", {"node", "rep"}).
    ``test_ctrl_c_to_the_xdist_controller_alone_...`` pins this for the xdist in use.
    """
    dsession = config.pluginmanager.getplugin("dsession")
    queue = getattr(dsession, "queue", None)
    while queue is not None:
        try:
            name, kwargs = queue.get_nowait()
        except Exception:  # queue.Empty: all read
            return
        report = kwargs.get("rep") if name == "testreport" else None
        if isinstance(report, pytest.TestReport):
            yield report
