"""Where ``ps.run`` runs its psets: serially, on a caller's executor, or on a pool of
``poolsize`` processes; and what is left of a pset that takes its process down.

A pset that kills the process running it (``os._exit``, a signal, out of memory)
gets a ``crashed`` row, as under the plugin: serially, from the journal's "started"
record, which the next run merges; on an executor, at once, from the start mark the
worker left in ``<calc_dir>/journal/<run_id>.started/`` before it called the
function (a pset whose future failed without one never started: no row). Ctrl-C
cancels what has not started; a pool of this run's own is terminated, not waited
for.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PsweepError
from .journal import CRASHED
from .params import public_params

if TYPE_CHECKING:
    from .rows import Run

Task = tuple[int, dict[str, Any], str]  # index in params, pset, its hash
Func = Callable[[dict[str, Any]], Any]


def wire_now() -> int:
    """Now as a row's ``_time_utc`` in wire form (microseconds since the epoch)."""
    return time.time_ns() // 1000


def started_marks(calc_dir: str | os.PathLike[str], run_id: str) -> Path:
    """The folder where workers mark the psets they start (see the module's doc)."""
    return Path(calc_dir, "journal", f"{run_id}.started")


def crashed_row(run: Run, pset: dict[str, Any], digest: str, error: str) -> dict[str, Any]:
    """The row of a pset whose process died: its parameters, book-keeping, outcome."""
    row = dict(pset)
    truth = run.bookkeep(row, digest)
    truth.update(_outcome="crashed", _error=error)
    return run.finish(row, truth)


# -- in the process that runs a pset ----------------------------------------------------

_pool_job: tuple[Run, Func, str | None] | None = None


def pool_init(run: Run, func: Func, marks: str | None) -> None:
    """A ``poolsize`` pool's worker gets the function once, not pickled per pset
    (forked, it takes lambdas and local functions too)."""
    global _pool_job
    _pool_job = (run, func, marks)


def pool_task(task: Task) -> tuple[int, bool, Any]:
    assert _pool_job is not None, "pool_init first"
    return execute_task(*_pool_job, task)


def execute_task(run: Run, func: Func, marks: str | None, task: Task) -> tuple[int, bool, Any]:
    """Run one pset where an executor runs it: (its index in params, did it succeed,
    its row or the exception), so that an exception comes back as a value. ``marks``:
    the folder to mark the start in (None: no mark)."""
    index, pset, digest = task
    if marks is not None:
        try:  # the folder is made by ps.run, and gone once it returned
            Path(marks, str(index)).touch()
        except OSError:
            pass  # not seen from here (another machine): no crashed row, the error stays
    try:
        return index, True, run.execute(func, pset, digest, False)
    except Exception as exc:
        return index, False, exc


# -- in the process that runs ps.run ------------------------------------------------------


class Journaling:
    """What the serial loop tells the journal: the psets planned (their parameters
    and book-keeping as they would start), that one started (its index and time: if the
    process dies, the next run merges it as a ``crashed`` row), and that it ended
    without a row (raised or interrupted: taken back)."""

    def __init__(
        self,
        planned: Callable[[int, list[dict[str, Any]]], None],
        started: Callable[[int, int], None],
        ended: Callable[[str], None],
    ) -> None:
        self.planned = planned
        self.started = started
        self.ended = ended


def execute_all(
    run: Run,
    func: Func,
    tasks: list[tuple[dict[str, Any], str]],
    poolsize: int | None,
    simulate: bool,
    executor: Executor | None,
    journaling: Journaling | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index in params, row) as psets finish: serially in params order, or from an
    executor (the caller's, or a process pool of ``poolsize``). ``journaling``: the
    run saves its rows in a journal (serially: the psets' start goes there too)."""
    if simulate or (executor is None and (not poolsize or poolsize <= 1)):
        yield from _serially(run, func, tasks, simulate, journaling)
        return
    if journaling is not None:
        marks = started_marks(run.calc_dir, run.run_id)
        marks.mkdir(parents=True, exist_ok=True)
    else:  # nothing in the calc dir: workers on this machine see a temp folder
        marks = Path(tempfile.mkdtemp(prefix="psweep-started-"))
    try:
        if executor is not None:
            execute = _Bound(run, func, str(marks))
            yield from from_executor(executor, execute, tasks, run, marks)
            return
        pool = ProcessPoolExecutor(
            poolsize, initializer=pool_init, initargs=(run, func, str(marks))
        )
        try:
            yield from from_executor(pool, pool_task, tasks, run, marks)
        except BaseException:  # Ctrl-C, a crash: running psets are not waited for
            terminate(pool)
            raise
        pool.shutdown(wait=True)
    finally:
        shutil.rmtree(marks, ignore_errors=True)


class _Bound:
    """``execute_task`` with the run, function and marks folder given: one picklable
    callable for any executor."""

    def __init__(self, run: Run, func: Func, marks: str | None) -> None:
        self.run, self.func, self.marks = run, func, marks

    def __call__(self, task: Task) -> tuple[int, bool, Any]:
        return execute_task(self.run, self.func, self.marks, task)


PLAN_CHUNK = 1024  # psets planned in one journal record, at most
PLAN_BYTES = 16 << 20  # and about this many bytes of their parameters


def _plan_size(pset: dict[str, Any]) -> int:
    """How many psets like this one to plan in one record: big parameters (arrays)
    make fewer, so that a plan's record neither holds up the first pset nor grows
    past what a record can hold."""
    try:
        size = len(pickle.dumps(pset, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # the plan leaves out what cannot be pickled
        return PLAN_CHUNK
    return max(1, min(PLAN_CHUNK, PLAN_BYTES // max(size, 1)))


def _serially(
    run: Run,
    func: Func,
    tasks: list[tuple[dict[str, Any], str]],
    simulate: bool,
    journaling: Journaling | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    if journaling is None or simulate:
        for index, (pset, digest) in enumerate(tasks):
            yield index, run.execute(func, pset, digest, simulate)
        return
    # the psets as they would start are journaled ahead, a chunk at a time, then
    # each start as a small record: the next run merges a started pset without a row
    # (this process died) as crashed; its finished row (the same _pset_id) supersedes
    # it, and a pset that raised (or was interrupted) has it taken back
    first, size = 0, _plan_size(tasks[0][0]) if tasks else PLAN_CHUNK  # psets alike
    while first < len(tasks):
        chunk = tasks[first : first + size]
        planned = wire_now()
        prepared = []
        for pset, digest in chunk:
            row = dict(pset)
            prepared.append((row, run.bookkeep(row, digest, planned)))
        # each truth as it starts: the reader makes a crashed row of it (journal.CRASHED)
        journaling.planned(first, [truth for _, truth in prepared])
        for index, (row, truth) in enumerate(prepared, first):
            journaling.started(index, run.start_now(row, truth))
            try:
                done = run.complete(func, row, truth)
            except BaseException:
                journaling.ended(truth["_pset_id"])
                raise
            yield index, done
        first += len(chunk)


def from_executor(
    executor: Executor,
    execute: Callable[[Task], tuple[int, bool, Any]],
    tasks: list[tuple[dict[str, Any], str]],
    run: Run,
    marks: Path,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each (index, row) as soon as its pset finishes. A raising pset stops the run:
    psets not started are cancelled, those running finish and their rows come first.
    A pset whose process died (its future failed, its start is marked in ``marks``)
    gets a ``crashed`` row and stops the run too, with a PsweepError naming it.
    Ctrl-C: what has not started is cancelled, the rows finished by then come, then
    the KeyboardInterrupt."""
    futures = [
        executor.submit(execute, (index, pset, digest))
        for index, (pset, digest) in enumerate(tasks)
    ]
    index_of = {future: index for index, future in enumerate(futures)}
    pending = set(futures)
    failure: BaseException | None = None
    crashed: list[str] = []
    try:
        while pending:
            done, pending = wait(pending, return_when="FIRST_COMPLETED")
            for future in sorted(done, key=index_of.__getitem__):
                position = index_of.pop(future)  # taken: its row, if any, comes once
                if future.cancelled():  # after a failure: never started
                    continue
                error = future.exception()
                if error is None:
                    index, ok, value = future.result()
                    if ok:
                        yield index, value
                        continue
                    failure = failure or value
                else:  # the process running it died, or the executor lost it
                    index = position
                    if (marks / str(index)).exists():  # it had started: it crashed
                        pset, digest = tasks[index]
                        cause = f"{CRASHED}: {type(error).__name__}: {error}".rstrip(": ")
                        crashed.append(f"pset {public_params(pset)} ({cause})")
                        yield index, crashed_row(run, pset, digest, cause)
                    else:
                        failure = failure or error
                for waiting in pending:
                    waiting.cancel()
            # cancelled is done: dask's ClientExecutor never notifies a cancel (it
            # leaves set_running_or_notify_cancel to the task's end, which a cancelled
            # task may never reach), and wait() would wait for it for ever
            pending = {future for future in pending if not future.cancelled()}
    except KeyboardInterrupt:
        for waiting in futures:
            waiting.cancel()
        for future in list(index_of):  # not taken yet: rows that finished meanwhile
            if future.done() and not future.cancelled() and future.exception() is None:
                index, ok, value = future.result()
                if ok:
                    yield index, value
        raise
    finally:  # also at an error here: nothing more starts
        for waiting in futures:
            waiting.cancel()
    if crashed:
        raise PsweepError(
            f"{len(crashed)} pset(s) took down the process running them and have "
            f"'crashed' rows: {'; '.join(crashed)}"
        )
    if failure is not None:
        raise failure


def terminate(pool: ProcessPoolExecutor) -> None:
    """End a pool now: cancel what waits, kill its workers (running psets get no
    row: they were interrupted), and let its threads go."""
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(5)
        if process.is_alive():
            process.kill()
