"""Files of a calc dir: the database, the journal of finished rows, the lock, backups.

Layout of ``<calc_dir>``::

    results.pk                the database: a pickled pandas.DataFrame
    results.pk.lock           held while the database is read-modified-written
    journal/<run_id>.jnl      rows of a run in progress, one record per finished pset
    journal/<run_id>.jnl.lock held by the run that writes the journal while it lives

A journal whose lock nobody holds belongs to a run that died: its rows are merged
into the database by the next run (``Database.recover``). ``ps.run`` appends its rows
itself; a pytest session has a ``WriterProcess`` append its journal.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PsweepError

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made, not at import
    import pandas as pd
    from filelock import FileLock

CALC_DIR = "calc"
DATABASE = "results.pk"
JOURNAL_DIR = "journal"
JOURNAL_SUFFIX = ".jnl"
_RECORD_HEADER = struct.Struct("<Q")


# -- reading and writing DataFrames -------------------------------------------------


def df_read(path: str | os.PathLike, fmt: str = "pickle") -> pd.DataFrame:
    """Read a database file (``fmt="pickle"`` or ``"json"``); clear error if unreadable."""
    import pandas as pd

    path = Path(path)
    try:
        if fmt == "pickle":
            df = pd.read_pickle(path)
        elif fmt == "json":
            text = path.read_text()
            # "split" as df_write makes it, or "records" as other tools (and psweep
            # export) write it
            orient = "records" if text.lstrip().startswith("[") else "split"
            df = pd.read_json(io.StringIO(text), orient=orient)
            if "_time_utc" in df:
                df["_time_utc"] = pd.to_datetime(df["_time_utc"], utc=True)
                _index_by_time(df)
        else:
            raise PsweepError(f"df_read: unknown fmt {fmt!r}; use 'pickle' or 'json'")
    except PsweepError:
        raise
    except FileNotFoundError:
        raise PsweepError(f"database {path} does not exist") from None
    except Exception as exc:
        raise PsweepError(
            f"database {path} cannot be read ({type(exc).__name__}: {exc}); it is "
            "left as it is: move it away or restore a backup"
        ) from exc
    if not isinstance(df, pd.DataFrame):
        raise PsweepError(
            f"database {path} holds a {type(df).__name__}, not a pandas DataFrame; "
            "it is left as it is: move it away or restore a backup"
        )
    return df


def df_write(df: pd.DataFrame, path: str | os.PathLike, fmt: str = "pickle") -> None:
    """Write df to path atomically: a temp file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "pickle":
                pickle.dump(df, fh, protocol=pickle.HIGHEST_PROTOCOL)
            elif fmt == "json":
                fh.write(df.to_json(orient="split", date_format="iso", date_unit="ns").encode())
            else:
                raise PsweepError(f"df_write: unknown fmt {fmt!r}; use 'pickle' or 'json'")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(df: pd.DataFrame, orient: str) -> str:
    """JSON text of df with 15 significant digits (pandas' default keeps 10)."""
    return df.to_json(
        orient=orient,
        date_format="iso",
        date_unit="us",
        double_precision=15,
        default_handler=str,
    )


def fmt_of(path: str | os.PathLike) -> str:
    """``"json"`` for a ``.json`` file, else ``"pickle"``."""
    return "json" if str(path).lower().endswith(".json") else "pickle"


class Columns:
    """Rows gathered column by column, in first-seen order of their keys, as a
    DataFrame is built from them; a key a row lacks is None in that row."""

    def __init__(self, rows: Iterable[dict] = ()) -> None:
        self.columns: dict[str, list] = {}
        self.count = 0
        for row in rows:
            self.add(row)

    def add(self, row: dict) -> None:
        columns = self.columns
        count = self.count
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * count
            column.append(value)
        self.count = count = count + 1
        if len(row) != len(columns):  # the row lacks keys of earlier rows
            for column in columns.values():
                if len(column) < count:
                    column.append(None)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame indexed by ``_time_utc``."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        if "_time_utc" in frame:
            # rows carry _time_utc in wire form: integer microseconds since the epoch
            frame["_time_utc"] = pd.to_datetime(frame["_time_utc"], unit="us", utc=True)
            _index_by_time(frame)
        return frame


def rows_to_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows (dicts) to a DataFrame indexed by ``_time_utc``, columns in first-seen order."""
    return Columns(rows).frame()


def _index_by_time(frame: pd.DataFrame) -> None:
    """Index the database by ``_time_utc``, as psweep's README shows it."""
    import pandas as pd

    frame.index = pd.DatetimeIndex(frame["_time_utc"]).rename(None)


def concat(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Append new rows below old ones; columns missing on one side become NA."""
    import pandas as pd

    if old is None or len(old) == 0:
        return new
    if len(new) == 0:
        return old
    with warnings.catch_warnings():
        # sweeps with different parameter names share one database: NA is intended
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat([old, new], sort=False)


def assign_counters(new: pd.DataFrame, *before: pd.DataFrame | None) -> None:
    """Number new rows after the rows before: ``_pset_seq`` per row, ``_run_seq`` per run."""
    import numpy as np
    import pandas as pd

    pset_seq = -1
    run_seqs: dict[str, int] = {}
    for old in before:
        if old is None or len(old) == 0:
            continue
        if "_pset_seq" in old:
            pset_seq = max(pset_seq, int(old["_pset_seq"].max()))
        if "_run_seq" in old and "_run_id" in old:
            pairs = old[["_run_id", "_run_seq"]].drop_duplicates("_run_id")
            run_seqs.update(zip(pairs["_run_id"], pairs["_run_seq"].astype(int)))
    next_run = max(run_seqs.values(), default=-1) + 1
    codes, run_ids = pd.factorize(new["_run_id"])  # run ids in order of appearance
    numbers = []
    for run_id in run_ids:
        if run_id not in run_seqs:
            run_seqs[run_id] = next_run
            next_run += 1
        numbers.append(run_seqs[run_id])
    new["_pset_seq"] = np.arange(pset_seq + 1, pset_seq + 1 + len(new))
    new["_run_seq"] = np.asarray(numbers, dtype=np.int64)[codes]


def file_lock(path: str) -> FileLock:
    """The lock of a lock file. filelock is imported here, where a lock is made: every
    pytest run with the plugin installed imports this module, and xdist workers never
    lock anything."""
    from filelock import FileLock

    return FileLock(path)


# -- the journal ---------------------------------------------------------------------


def encode_row(row: dict) -> bytes:
    """One journal record for row; a value that cannot be pickled is named in the error."""
    try:
        payload = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        keys = sorted(set(row) - set(without_unpicklable(row)))
        raise PsweepError(
            f"pset {row.get('_pset_id')}: the value of key(s) "
            f"{', '.join(map(repr, keys))} cannot be pickled "
            f"({type(exc).__name__}: {exc}); return plain numbers, strings, arrays "
            "or save it as a file under _calc_dir/_pset_id"
        ) from exc
    return _RECORD_HEADER.pack(len(payload)) + payload


def without_unpicklable(row: dict) -> dict:
    """A copy of row without the values that cannot be pickled."""
    kept = {}
    for key, value in row.items():
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            continue
        kept[key] = value
    return kept


def read_journal(path: str | os.PathLike) -> list[dict]:
    """Rows of a journal file; a record cut short by a kill is dropped."""
    blob = Path(path).read_bytes()
    return [pickle.loads(blob[start:end]) for start, end in _record_spans(blob)]


def _record_spans(blob: bytes) -> Iterator[tuple[int, int]]:
    """Where the payloads of the whole records in blob start and end."""
    pos, size = 0, len(blob)
    while pos + _RECORD_HEADER.size <= size:
        (length,) = _RECORD_HEADER.unpack_from(blob, pos)
        start = pos + _RECORD_HEADER.size
        if start + length > size:
            return
        yield start, start + length
        pos = start + length


def journal_path(calc_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(calc_dir) / JOURNAL_DIR / f"{run_id}{JOURNAL_SUFFIX}"


class JournalTail:
    """Reads a journal while another process appends to it: the rows of the records
    written so far, column by column, each record decoded once."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows = Columns()
        self._pending = b""  # the start of a record whose end is not written yet
        self._offset = 0

    def read(self) -> None:
        """Take in the records written since the last read."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                blob = fh.read()
        except FileNotFoundError:
            return  # no row finished yet
        self._offset += len(blob)
        data = self._pending + blob
        used = 0
        try:
            for start, end in _record_spans(data):
                self.rows.add(pickle.loads(data[start:end]))
                used = end
        finally:  # a record that cannot be decoded (yet) is the first one kept
            self._pending = data[used:]


class Journal:
    """Append-only file of one run's finished rows, so that a kill loses none of them.

    The run holds the journal's lock while it lives; each row is written with one
    ``os.write`` as soon as it exists (no fsync: it must survive the process, and the
    operating system keeps what was written).
    """

    def __init__(self, calc_dir: str | os.PathLike, run_id: str) -> None:
        self.path = journal_path(calc_dir, run_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # lock first: a journal without a held lock is taken as left by a dead run
        self._lock = file_lock(f"{self.path}.lock")
        self._lock.acquire()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, row: dict) -> None:
        os.write(self._fd, encode_row(row))

    def append_encoded(self, record: bytes) -> None:
        os.write(self._fd, record)

    def close(self, remove: bool) -> None:
        """Stop writing; remove the file once its rows are in the database."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if remove:
            self.path.unlink(missing_ok=True)
        self._lock.release()
        if remove:
            Path(self._lock.lock_file).unlink(missing_ok=True)


# -- the database of a calc dir --------------------------------------------------------


class Database:
    """The database file of one calc dir, changed only under its lock."""

    def __init__(self, calc_dir: str | os.PathLike, keep_read: bool = False) -> None:
        self.calc_dir = Path(calc_dir)
        self.path = self.calc_dir / DATABASE
        self.lock = file_lock(f"{self.path}.lock")
        # keep_read: remember the DataFrame read last, and read the file again only
        # once it has been replaced (every write renames a new file into place)
        self._keep_read = keep_read
        self._kept: tuple[tuple[int, int, int], pd.DataFrame] | None = None

    def check_calc_dir(self) -> None:
        """Make the calc dir, or say clearly why it cannot be one."""
        if self.calc_dir.exists() and not self.calc_dir.is_dir():
            raise PsweepError(
                f"calc dir {self.calc_dir} is a file, not a folder; choose another "
                "calc dir or move the file away"
            )
        self.calc_dir.mkdir(parents=True, exist_ok=True)

    def read(self) -> pd.DataFrame | None:
        """The database, or None when there is none yet."""
        if not self._keep_read:
            return df_read(self.path) if self.path.exists() else None
        try:
            stamp = self._stamp()
        except FileNotFoundError:
            return None
        if self._kept is None or self._kept[0] != stamp:
            self._kept = (stamp, df_read(self.path))
        return self._kept[1]

    def _stamp(self) -> tuple[int, int, int]:
        info = self.path.stat()
        return info.st_ino, info.st_size, info.st_mtime_ns

    def append(
        self, rows: Iterable[dict] | pd.DataFrame, counters_after: pd.DataFrame | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Append rows (dicts, or a DataFrame of them) under the lock in one atomic
        write: (whole database, new rows).

        Counters continue after the database and after ``counters_after`` (a
        DataFrame the caller appends to in memory). Rows whose ``_pset_id`` is already
        in the database are not added twice.
        """
        new = rows if hasattr(rows, "columns") else rows_to_frame(rows)
        self.check_calc_dir()
        with self.lock:
            old = self.read()
            if old is not None and "_pset_id" in old and "_pset_id" in new and len(new):
                present = new["_pset_id"].isin(old["_pset_id"])
                if present.any():
                    new = new[~present.to_numpy()].copy()
            if not len(new):
                return (old if old is not None else new), new
            assign_counters(new, old, counters_after)
            database = concat(old, new)
            df_write(database, self.path)
            if self._keep_read:
                self._kept = (self._stamp(), database)
        return database, new

    def orphan_journals(self) -> Iterable[tuple[Path, FileLock]]:
        """Journals of runs that died, each yielded with its lock held."""
        folder = self.calc_dir / JOURNAL_DIR
        if not folder.is_dir():
            return
        for path in sorted(folder.glob(f"*{JOURNAL_SUFFIX}")):
            lock = file_lock(f"{path}.lock")
            try:
                lock.acquire(timeout=0)
            except TimeoutError:  # filelock's Timeout is one
                continue  # a live run writes this one
            try:
                if path.exists():
                    yield path, lock
            finally:
                lock.release()

    def recover(self, deferred: list[str] | None = None) -> int:
        """Merge the journals of dead runs into the database; return the rows saved.

        A journal whose rows cannot be decoded here (their objects' classes cannot be
        imported) is kept: its problem goes to ``deferred`` if given, else it is a
        PsweepError.
        """
        saved = 0
        for path, lock in self.orphan_journals():
            try:
                rows = read_journal(path)
            except Exception as exc:
                problem = (
                    f"journal {path} cannot be decoded here ({type(exc).__name__}: {exc}); "
                    "it is kept"
                )
                if deferred is None:
                    raise PsweepError(
                        f"{problem}: make the modules of its values importable and run "
                        "'psweep recover'"
                    ) from exc
                deferred.append(problem)
                continue
            _, new = self.append(rows)
            saved += len(new)
            path.unlink(missing_ok=True)
            Path(lock.lock_file).unlink(missing_ok=True)
        return saved


def backup_calc_dir(calc_dir: str | os.PathLike, database: Any) -> Path | None:
    """Copy the calc dir to ``<calc_dir>_<newest _time_utc>``; None if nothing to keep."""
    calc_dir = Path(calc_dir)
    if database is None or len(database) == 0 or not calc_dir.is_dir():
        return None
    newest = database["_time_utc"].max()
    stamp = newest.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    target = calc_dir.with_name(f"{calc_dir.name}_{stamp}")
    if not target.exists():
        shutil.copytree(calc_dir, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


def copy_source(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Keep a copy of a script or sweep module that produced rows."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


# -- the process that writes a pytest session's database --------------------------------


class WriterProcess:
    """A child process that checks the database at the start of a pytest session,
    reads the session's journal while it grows and appends its rows to the database
    at the end.

    It imports pandas, reads the database and decodes each row soon after it is
    journaled, while the session collects and runs, on another core; the pytest
    process then never imports pandas (0.3-0.5 s, and its objects walked by each of
    pytest's garbage collections at exit) nor keeps rows in memory, and at the end
    waits only for the DataFrame and the write. If the process dies, the journal
    stays for the next run, as after a killed session.
    """

    def __init__(self, calc_dir: str | os.PathLike, journal: str | os.PathLike) -> None:
        self.calc_dir = Path(calc_dir)
        self.recovered = 0  # rows of interrupted runs it merged at the end
        self.deferred: list[str] = []  # journals of interrupted runs it could not merge
        # the child's sys.path is this process's (rows may hold objects of classes
        # from the session's modules), then the package's own folder, so that it is
        # found even when not installed
        command = (
            "import json, sys; sys.path[:] = json.loads(sys.argv.pop()); "
            f"from {__name__} import _writer_main; _writer_main(*sys.argv[1:])"
        )
        path = [*sys.path, str(Path(__file__).resolve().parents[1])]
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", command, str(calc_dir), str(journal), json.dumps(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise PsweepError(f"cannot start the process that writes {self.path}: {exc}") from exc
        self._ready = False
        self._given = False  # told to append the journal

    @property
    def path(self) -> Path:
        return self.calc_dir / DATABASE

    def wait_ready(self) -> None:
        """Wait until the database has been read; PsweepError if it cannot be."""
        if not self._ready:
            self._answer()
            self._ready = True

    def append_journal(self, records: int) -> int:
        """Append the journal's rows (``records`` of them, all written) to the database
        in one atomic write; the number of rows written."""
        self.wait_ready()
        self._given = True
        try:
            # sys.path as collection left it: the modules the rows' objects come from
            message = {"records": records, "path": sys.path}
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except OSError:
            pass  # it died: _answer says how
        answer = self._answer()
        self._end_input()  # it exits by itself; close() reaps it
        self.recovered = answer.get("recovered", 0)
        self.deferred = answer.get("deferred", [])
        return answer["written"]

    def close(self) -> None:
        """End the process and reap it. One that was not told to append is stopped at
        once: it has only read, and a session without sweeps need not wait for it."""
        if not self._given and self._process.poll() is None:
            self._process.kill()
        self._end_input()
        self._process.wait()

    def _end_input(self) -> None:
        try:
            self._process.stdin.close()
        except OSError:
            pass

    def _answer(self) -> dict:
        line = self._process.stdout.readline()
        answer = json.loads(line) if line.startswith("{") else {}
        if answer and "error" not in answer:
            return answer
        self._end_input()  # it has ended or is ending: reap it for its exit code
        self._process.wait()
        if not answer:
            raise PsweepError(
                f"the process that writes {self.path} ended (exit code "
                f"{self._process.returncode}) before it answered"
            )
        raise PsweepError(answer["error"])


_TAIL_SECONDS = 0.1  # how often the writer reads what was journaled since


def _writer_main(calc_dir: str, journal: str) -> None:
    """The writer process: read the database, answer, read the journal as it grows,
    append its rows when told how many there are."""

    def say(**answer: Any) -> None:
        print(json.dumps(answer), flush=True)

    # the database read now, while the session runs, is read again at the end only
    # if another session has written it meanwhile
    database = Database(calc_dir, keep_read=True)
    try:
        import pandas  # noqa: F401  the slow import, while the session runs

        database.read()
    except PsweepError as exc:
        # a class of a value that cannot be imported before the session has collected
        # its modules is not a broken database: read again at the end
        if not isinstance(exc.__cause__, (ImportError, AttributeError)):
            say(error=str(exc))
            return
    say(ready=True)
    tail = JournalTail(journal)
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.wait(_TAIL_SECONDS):
            try:
                tail.read()
            except Exception:
                return  # e.g. a class not importable yet: read at the end

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    line = sys.stdin.readline()
    stop.set()
    reader.join()
    if line:
        try:
            message = json.loads(line)
            sys.path[:0] = [entry for entry in message["path"] if entry not in sys.path]
            tail.read()
            if tail.rows.count != message["records"]:
                raise PsweepError(
                    f"journal {journal} holds {tail.rows.count} whole rows, the session "
                    f"wrote {message['records']}"
                )
            deferred: list[str] = []
            recovered = database.recover(deferred)  # those the session could not decode
            _, new = database.append(tail.rows.frame())
        except Exception as exc:
            problem = str(exc) if isinstance(exc, PsweepError) else f"{type(exc).__name__}: {exc}"
            say(error=problem)
            return
        say(written=len(new), recovered=recovered, deferred=deferred)
    # the database is written and renamed, the answer flushed: skip the interpreter's
    # teardown of pandas (about 0.1 s) that the session would otherwise wait for
    os._exit(0)
