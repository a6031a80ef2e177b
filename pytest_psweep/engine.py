"""Book-keeping of one run and the run loop behind ``ps.run``.

The plugin and ``run()`` share ``Run``: it turns one pset into one row (book-keeping
fields, the function's result, its runtime) wherever the pset is executed; the rows
then travel to the one process that journals them and appends them to the database.
"""

from __future__ import annotations

import contextlib
import functools
import io
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calcdir import Database
from .database import assign_counters, concat, rows_to_frame
from .errors import PsweepError
from .executors import Journaling, execute_all
from .names import CALC_DIR, DATABASE, LEGACY_DATABASE, counted, new_id
from .params import check_params, hash_params
from .provenance import provenance
from .rows import Run as Run
from .session import CalcSession

if TYPE_CHECKING:
    import pandas as pd

# -- ps.run ---------------------------------------------------------------------------

_NA: Any = object()  # run()'s fill_value default: missing values stay NA


def run(
    func: Callable[[dict[str, Any]], dict[str, Any] | None],
    params: Sequence[dict[str, Any]],
    df: pd.DataFrame | None = None,
    poolsize: int | None = None,
    save: bool = True,
    tmpsave: bool = False,
    verbose: bool | Sequence[str] = False,
    calc_dir: str = CALC_DIR,
    backup_script: str | None = None,
    backup_calc_dir: bool = False,
    simulate: bool = False,
    skip_dups: bool = False,
    *,
    backup: bool = False,
    capture_logs: str | None = None,
    fill_value: Any = _NA,
    git: bool = False,
    dask_client: Any = None,
    database_basename: str = DATABASE,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Call ``func(pset)`` for each pset and return the database with the new rows.

    Each finished row is journaled at once; at the end all are appended to
    ``<calc_dir>/results.pk`` in one atomic write. If func raises, the run stops,
    the rows finished before it are saved, and the exception propagates.

    psweep 0.16's keywords: ``backup`` is ``backup_calc_dir``; ``capture_logs``
    ("db", "file", "db+file") keeps what ``func`` prints in the column ``_logs``
    and/or ``<calc_dir>/<_pset_id>/logs.txt``; ``fill_value`` fills the missing
    values of the returned frame (the database keeps NA); ``git=True`` refuses a
    dirty git repository, records ``_git_commit`` and ``_versions`` in each row and
    commits the calc dir after the run. ``database_basename`` is accepted for
    psweep's scripts: the database is always ``results.pk`` (psweep's "database.pk"
    names it too).

    Parallel: ``executor`` is any ``concurrent.futures.Executor`` (a
    ``ProcessPoolExecutor``, dask's ``Client.get_executor()``, mpi4py.futures, loky,
    ...), which the caller owns; ``dask_client`` (psweep's keyword) a dask
    ``distributed.Client``; ``poolsize=N`` a pool of N processes made for this run.
    Rows are journaled as they finish, in whatever order, and the database gets them
    in params order, as from a serial run.
    """
    if database_basename not in (DATABASE, LEGACY_DATABASE):
        raise PsweepError(
            f"run: database_basename={database_basename!r}: the database of a calc dir "
            f"is always {DATABASE}"
        )
    if dask_client is not None:
        if executor is not None:
            raise PsweepError("run: give executor or dask_client, not both")
        if not hasattr(dask_client, "get_executor"):
            raise PsweepError(
                f"run: dask_client={dask_client!r} is no dask distributed.Client; give "
                "one, or any concurrent.futures.Executor as executor="
            )
        executor = dask_client.get_executor()
    if executor is not None and not hasattr(executor, "submit"):
        raise PsweepError(
            f"run: executor={executor!r} has no submit(): give a concurrent.futures.Executor"
        )
    params = check_params(params, "run")
    if capture_logs is not None:
        func = functools.partial(_capturing_logs, func=func, mode=_logs_mode(capture_logs))
    provenance_columns = _git_enter(calc_dir) if git else {}
    session = CalcSession(calc_dir, new_id(), simulate=simulate, backup=backup_calc_dir or backup)
    this_run = Run(str(session.target.path), session.run_id, as_psweep=True)
    if save or simulate:
        session.open(journal=save)
        if session.recovery.saved:
            print(
                f"psweep: merged {counted(session.recovery.saved, 'row')} left by an "
                f"interrupted run into {session.calc_dir.database}",
                file=sys.stderr,
            )
        for problem in session.recovery.notes:
            print(f"psweep: {problem}", file=sys.stderr)
    before = df if df is not None else session.before()

    tasks = list(zip(params, hash_params(params, "run")))
    if skip_dups and before is not None and "_pset_hash" in before:
        ran = before  # a pset that crashed its process runs again
        if "_outcome" in before:
            ran = before[~before["_outcome"].isin(["crashed"]).to_numpy()]
        done = set(ran["_pset_hash"])
        tasks = [task for task in tasks if task[1] not in done]
    # psweep's function sees its row's counters (the database numbers the rows again
    # when it appends them: the same numbers unless another run appended meanwhile)
    pset_seq, run_seq = _next_counters(before)
    tasks = [
        ({**pset, "_run_seq": run_seq, "_pset_seq": pset_seq + index}, digest)
        for index, (pset, digest) in enumerate(tasks)
    ]

    if backup_script is not None and save:
        session.keep_script(backup_script)
    finished: list[tuple[int, dict[str, Any]]] = []  # (index in params, row)
    failure: BaseException | None = None
    try:
        journaling = (
            Journaling(session.record_planned, session.record_started_at, session.record_ended)
            if save
            else None
        )
        for index, row in execute_all(
            this_run, func, tasks, poolsize, simulate, executor, journaling
        ):
            row.update(provenance_columns)
            if save:
                session.record(row)
            if tmpsave:
                session.tmpsave(row)
            if verbose:
                _print_row(row, verbose)
            finished.append((index, row))
    except BaseException as exc:  # Ctrl-C too: keep what finished, then re-raise
        failure = exc

    # in params order, as from a serial run (an executor finishes them in any order)
    finished.sort(key=lambda pair: pair[0])
    rows = [row for _, row in finished]
    try:
        if save:
            session.order_rows(rows)
            whole, new = session.finish(counters_after=df)
            if df is not None:  # the database is df and the new rows, as psweep writes it
                whole = concat(df, new)
                kept = Database(session.target).replace(whole) if len(whole) else None
                if kept is not None:
                    print(
                        f"psweep: run(df=...) replaced {session.target.database}; "
                        f"its rows that df lacks are kept in {kept}",
                        file=sys.stderr,
                    )
        else:
            new = rows_to_frame(rows)
            if rows:
                assign_counters(new, before)
    finally:
        session.close()
    if failure is not None:
        if rows and hasattr(failure, "add_note"):
            where = session.target.database if save else "nowhere (save=False)"
            failure.add_note(
                f"psweep: the {counted(len(rows), 'pset')} finished before were saved to {where}"
            )
        raise failure
    result = whole if save else concat(before, new)
    if git and save and not simulate:
        _git_commit(session.calc_dir.path, session.run_id)
    if fill_value is not _NA and result is not None:
        result = result.astype(object).where(result.notna(), fill_value)
    return result


def _next_counters(before: pd.DataFrame | None) -> tuple[int, int]:
    """The ``_pset_seq`` of the next row and the ``_run_seq`` of the next run."""
    if before is None or len(before) == 0:
        return 0, 0
    import pandas as pd

    numbers = []
    for column in ("_pset_seq", "_run_seq"):
        highest = before[column].max() if column in before else None
        numbers.append(0 if highest is None or pd.isna(highest) else int(highest) + 1)
    return numbers[0], numbers[1]


_LOGS_MODES = ("db", "file", "db+file")


def _logs_mode(mode: str) -> str:
    if mode not in _LOGS_MODES:
        raise PsweepError(f"run: capture_logs={mode!r} is not one of {', '.join(_LOGS_MODES)}")
    return mode


def _capturing_logs(pset: dict[str, Any], func: Callable[..., Any], mode: str) -> Any:
    """Call func(pset) with its stdout and stderr captured (psweep's capture_logs):
    into the column ``_logs`` ("db"), ``<_calc_dir>/<_pset_id>/logs.txt`` ("file"),
    or both. Output of subprocesses and of C code is not captured (it bypasses
    ``sys.stdout``), as in psweep."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            result = func(pset)
    finally:
        if "file" in mode:
            folder = Path(pset["_calc_dir"]) / pset["_pset_id"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "logs.txt").write_text(buffer.getvalue())
    if "db" in mode:
        result = {**(result or {}), "_logs": buffer.getvalue()}
    return result


def _git_enter(calc_dir: str) -> dict[str, Any]:
    """``git=True``: the repository around the calc dir must be clean; its commit and
    the versions go into each row."""
    folder = Path(calc_dir).absolute()
    while not folder.exists():
        folder = folder.parent
    found = provenance(folder)
    if found["_git_commit"] is None:
        raise PsweepError(f"run(git=True): {folder} is in no git repository; create one first")
    if found["_git_dirty"]:
        raise PsweepError(
            f"run(git=True): the git repository of {folder} has uncommitted changes; "
            "commit them first, so that the rows name the code that made them"
        )
    return found


def _git_commit(calc_dir: Path, run_id: str) -> None:
    """Commit what the run wrote to the calc dir, as psweep does."""
    calc_dir = calc_dir.absolute()
    for args in (
        ["add", "-A", "--", str(calc_dir)],
        ["commit", "-q", "-m", f"psweep: {calc_dir.name}: run_id={run_id}", "--", str(calc_dir)],
    ):
        done = subprocess.run(
            ["git", "-C", str(calc_dir), *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0 and "nothing to commit" not in done.stdout:
            raise PsweepError(f"run(git=True): git {args[0]} failed: {done.stderr.strip()}")


def _print_row(row: dict[str, Any], verbose: bool | Sequence[str]) -> None:
    shown = row if isinstance(verbose, bool) else {key: row.get(key) for key in verbose}
    print(shown, flush=True)
