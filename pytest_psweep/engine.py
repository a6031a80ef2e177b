"""Book-keeping of one run and the run loop behind ``ps.run``.

The plugin and ``run()`` share ``Run``: it turns one pset into one row (book-keeping
fields, the function's result, its runtime) wherever the pset is executed; the rows
then travel to the one process that journals them and appends them to the database.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import database as db
from .database import CALC_DIR, DATABASE, Database, Journal
from .errors import PsweepError
from .params import check_params, pset_hash

if TYPE_CHECKING:
    import pandas as pd

SIMULATE_SUFFIX = ".simulate"
_HOST = socket.gethostname()


def new_id() -> str:
    """A random UUID (version 4) as text; cheaper than ``str(uuid.uuid4())``."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class Run:
    """One run (a ``run()`` call or a pytest session): its id and how a pset becomes a row.

    A row leaves ``finish`` in wire form: builtin types only where book-keeping is
    concerned (``_time_utc`` as integer microseconds since the epoch), so that it
    pickles fast into the journal and crosses to an xdist controller.
    """

    def __init__(self, calc_dir: str, run_id: str | None = None) -> None:
        self.calc_dir = str(calc_dir)
        self.run_id = run_id or new_id()

    def prepare(self, pset: dict, digest: str | None = None) -> dict:
        """A copy of pset with the fields the function may use before it is called."""
        return self.bookkeep(dict(pset), digest)

    def bookkeep(self, row: dict, digest: str | None = None) -> dict:
        """Set, in place, the fields the function may use before it is called."""
        digest = digest or pset_hash(row)
        row["_run_id"] = self.run_id
        row["_pset_id"] = new_id()
        row["_pset_hash"] = digest
        row["_calc_dir"] = self.calc_dir
        row["_time_utc"] = datetime.now(timezone.utc)
        return row

    def call(self, call: Callable[[], Any], row: dict, where: str) -> list[str]:
        """Run ``call()`` (the function on this row), time it, merge what it returns.

        Returns the keys the function returned.
        """
        start = time.perf_counter()
        try:
            result = call()
        finally:
            row["_pset_runtime"] = time.perf_counter() - start
        return merge_result(row, result, where)

    def finish(self, row: dict) -> dict:
        """Complete the row's book-keeping and put it in wire form."""
        row.setdefault("_pset_runtime", 0.0)
        row["_exec_host"] = _HOST
        started = row["_time_utc"]
        if isinstance(started, datetime):
            row["_time_utc"] = (started - _EPOCH) // _MICROSECOND
        return row

    def execute(
        self, func: Callable, pset: dict, digest: str | None = None, simulate=False
    ) -> dict:
        """The row of one pset: prepared, func's result merged (unless simulating)."""
        row = self.prepare(pset, digest)
        if not simulate:
            self.call(lambda: func(row), row, _func_name(func))
        return self.finish(row)


def merge_result(row: dict, result: Any, where: str) -> list[str]:
    """``row.update(result)`` for a dict or None; anything else is the user's mistake."""
    if result is None:
        return []
    if not isinstance(result, dict):
        raise PsweepError(
            f"{where}: returned a {type(result).__name__} for pset "
            f"{public_params(row)}; return a dict of results (or None)"
        )
    row.update(result)
    return list(result)


def public_params(row: dict) -> dict:
    """The parameters of a row as the user wrote them (no book-keeping)."""
    return {key: value for key, value in row.items() if not key.startswith("_")}


def _func_name(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


# -- ps.run ---------------------------------------------------------------------------

_pool_job: tuple[Run, Callable, bool] | None = None


def _pool_init(run: Run, func: Callable, simulate: bool) -> None:
    global _pool_job
    _pool_job = (run, func, simulate)


def _pool_execute(task: tuple[dict, str]) -> tuple[bool, Any]:
    """Run one pset in a pool worker; an exception comes back as a value."""
    run, func, simulate = _pool_job
    pset, digest = task
    try:
        return True, run.execute(func, pset, digest, simulate)
    except Exception as exc:
        return False, exc


def _simulate_dir(calc_dir: Path) -> Path:
    """A fresh ``<calc_dir>.simulate`` holding a copy of the database only."""
    target = calc_dir.with_name(calc_dir.name + SIMULATE_SUFFIX)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if (calc_dir / DATABASE).exists():
        shutil.copy2(calc_dir / DATABASE, target / DATABASE)
    return target


class Recorder:
    """The one process that keeps a run's rows: journals each, appends all at the end."""

    def __init__(self, calc_dir: str | os.PathLike, run_id: str) -> None:
        self.database = Database(calc_dir)
        self.run_id = run_id
        self.count = 0
        self._journal: Journal | None = None
        self._rows: list[dict] = []  # kept by record(); encoded rows live in the journal

    def record(self, row: dict) -> None:
        """Journal a finished row (a value that cannot be pickled is a PsweepError)."""
        self._write(db.encode_row(row))
        self._rows.append(row)

    def record_encoded(self, record: bytes) -> None:
        """Journal a row encoded where it was made (e.g. an xdist worker); it is read
        back from the journal at the end, so a long session keeps no rows in memory."""
        self._write(record)

    def _write(self, record: bytes) -> None:
        if self._journal is None:
            self.database.check_calc_dir()
            self._journal = Journal(self.database.calc_dir, self.run_id)
        self._journal.append_encoded(record)
        self.count += 1

    def finish(self, counters_after: pd.DataFrame | None = None) -> tuple[Any, Any]:
        """Append the rows to the database in one atomic write: (database, new rows).

        If the database cannot be written, the journal stays for the next run.
        """
        if self._journal is None:
            return self.database.read(), db.rows_to_frame([])
        rows = self._rows if len(self._rows) == self.count else db.read_journal(self._journal.path)
        whole, new = self.database.append(rows, counters_after=counters_after)
        self._close_journal(remove=True)
        return whole, new

    def finish_in(self, writer: db.WriterProcess) -> int:
        """Have the writer process append the journal; the number of rows written.

        If it cannot, the journal stays for the next run (PsweepError).
        """
        if self._journal is None:
            writer.close()
            return 0
        try:
            written = writer.append_journal(self.count)
        except PsweepError:
            self._close_journal(remove=False)
            raise
        self._close_journal(remove=True)
        return written

    def _close_journal(self, remove: bool) -> None:
        """Stop journaling; remove the journal once its rows are in the database."""
        self._journal.close(remove=remove)
        self._journal = None

    @property
    def journal_path(self) -> Path:
        """Where this run's rows are journaled (the file exists once one is)."""
        return db.journal_path(self.database.calc_dir, self.run_id)

    @property
    def journal_dir(self) -> Path:
        return self.database.calc_dir / db.JOURNAL_DIR

    def keep_source(self, source: Path, relative: str) -> None:
        """Copy a module or script that made rows to ``backup_script/<_run_id>/``."""
        if source.is_file():
            target = self.database.calc_dir / "backup_script" / self.run_id / relative
            db.copy_source(source, target)


def prepare_calc_dir(
    calc_dir: str | os.PathLike, simulate: bool, backup: bool, deferred: list | None = None
) -> tuple[Path, int]:
    """Before a run: merge rows of interrupted runs, back up or make the simulate copy.

    Returns the calc dir the run writes to (``<calc_dir>.simulate`` when simulating)
    and the number of rows recovered from interrupted runs. A journal that cannot be
    decoded yet goes to ``deferred`` if given (see ``Database.recover``).
    """
    calc_path = Path(calc_dir)
    database = Database(calc_path)
    database.check_calc_dir()
    recovered = database.recover(deferred)
    if simulate:
        return _simulate_dir(calc_path), recovered
    if backup:
        db.backup_calc_dir(calc_path, database.read())
    return calc_path, recovered


def run(
    func: Callable[[dict], dict | None],
    params: Sequence[dict],
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
) -> pd.DataFrame:
    """Call ``func(pset)`` for each pset and return the database with the new rows.

    Each finished row is journaled at once; at the end all are appended to
    ``<calc_dir>/results.pk`` in one atomic write. If func raises, the run stops,
    the rows finished before it are saved, and the exception propagates.
    """
    params = check_params(params, "run")
    calc_path = Path(calc_dir)
    if save or simulate:
        calc_path, recovered = prepare_calc_dir(calc_dir, simulate, backup_calc_dir)
        if recovered:
            print(
                f"psweep: merged {recovered} rows left by an interrupted run into "
                f"{Path(calc_dir) / DATABASE}",
                file=sys.stderr,
            )
    before = df if df is not None else Database(calc_path).read()

    tasks = [(pset, pset_hash(pset)) for pset in params]
    if skip_dups and before is not None and "_pset_hash" in before:
        done = set(before["_pset_hash"])
        tasks = [task for task in tasks if task[1] not in done]

    this_run = Run(str(calc_path))
    recorder = Recorder(calc_path, this_run.run_id) if save else None
    if backup_script is not None and save:
        db.copy_source(backup_script, calc_path / "backup_script" / f"{this_run.run_id}.py")
    rows: list[dict] = []
    failure: BaseException | None = None
    try:
        for row in _execute_all(this_run, func, tasks, poolsize, simulate):
            if recorder is not None:
                recorder.record(row)
            if tmpsave:
                tmp = calc_path / "tmpsave" / this_run.run_id / f"{row['_pset_id']}.pk"
                db.df_write(db.rows_to_frame([row]), tmp)
            if verbose:
                _print_row(row, verbose)
            rows.append(row)
    except BaseException as exc:  # Ctrl-C too: keep what finished, then re-raise
        failure = exc

    if recorder is not None:
        whole, new = recorder.finish(counters_after=df)
    else:
        new = db.rows_to_frame(rows)
        if rows:
            db.assign_counters(new, before)
    if failure is not None:
        if rows and hasattr(failure, "add_note"):
            where = calc_path / DATABASE if save else "nowhere (save=False)"
            failure.add_note(f"psweep: the {len(rows)} psets finished before were saved to {where}")
        raise failure
    if save and df is None:
        return whole
    return db.concat(before, new)


def _execute_all(run_: Run, func, tasks, poolsize, simulate):
    """Rows in params order, serially or from a process pool."""
    if not poolsize or poolsize <= 1 or simulate:
        for pset, digest in tasks:
            yield run_.execute(func, pset, digest, simulate)
        return
    with multiprocessing.Pool(poolsize, _pool_init, (run_, func, simulate)) as pool:
        for ok, value in pool.imap(_pool_execute, tasks):
            if not ok:
                pool.terminate()
                raise value
            yield value


def _print_row(row: dict, verbose: bool | Sequence[str]) -> None:
    shown = row if verbose is True else {key: row.get(key) for key in verbose}
    print(shown, flush=True)


def code_hash(func: Any) -> str:
    """Hash of the sweep function's code: its body, not its decorators (which hold the
    params, so extending a grid is not new code), comments and layout left out."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        node = tree.body[0]
        node.decorator_list = []
        source = ast.unparse(node)
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        source = func.__code__.co_code.hex()
    return hashlib.sha1(source.encode()).hexdigest()


def provenance(folder: Path) -> dict[str, Any]:
    """Where a session's rows come from: git commit and dirty flag of ``folder``
    (None outside a git repository) and the versions that matter, in one string."""
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {"_git_commit": commit, "_git_dirty": dirty, "_versions": versions(folder)}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def versions(folder: Path) -> str:
    """``python=3.11.7 pytest=... pandas=... numpy=... pytest-psweep=... <project>=...``."""
    from importlib import metadata

    names = ["pytest", "pandas", "numpy", "pytest-psweep"]
    project = _project_name(folder)
    if project and project not in names:
        names.append(project)
    parts = [f"python={platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(parts)


def _project_name(folder: Path) -> str | None:
    """The ``[project] name`` of folder's pyproject.toml, if there is one."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    try:
        with open(folder / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh).get("project", {}).get("name")
    except (OSError, ValueError):
        return None


def encode_row(row: dict) -> tuple[bytes, str | None]:
    """The journal record of a row, and what was wrong if parts of it could not be
    pickled (those values are then left out of the record)."""
    try:
        return db.encode_row(row), None
    except PsweepError as exc:
        return db.encode_row(db.without_unpicklable(row)), str(exc)


def read_database(path: str | os.PathLike) -> pd.DataFrame | None:
    """The database of a calc dir (None if it has none yet) or of a file (.pk, .json)."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        return Database(path).read()
    return db.df_read(path, db.fmt_of(path))
