"""One calc dir: where each of its files lives, its database under a lock, recovery,
backups and the simulate copy.

Layout of ``<calc_dir>``::

    results.pk                   the database: a pickled pandas.DataFrame
    results.pk.lock              held while the database is read-modified-written
    journal/<run_id>.jnl         rows of a run in progress (``journal``)
    journal/<run_id>.jnl.lock    held by the run that writes the journal while it lives
    journal/quarantine/          journals that could not be merged whole (damaged)
    journal/<run_id>.started/    psets a ``ps.run`` executor's workers started
    backup_script/<run_id>/...   sweep modules of a pytest session that made rows
    backup_script/<run_id>.py    the driver script of ``ps.run(backup_script=...)``
    import_roots.json            folders the sweep modules were imported from
    tmpsave/<run_id>/<pset_id>.pk  one row each, ``ps.run(tmpsave=True)``
    <pset_id>/                   a pset's own folder for the files its function writes

Beside it: ``<calc_dir>.simulate/`` (a copy of the database that a simulation
writes to) and ``<calc_dir>_<newest _time_utc>/`` (backups).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import journal
from .copies import backup
from .database import (
    assign_counters,
    concat,
    df_read,
    df_write,
    file_lock,
    fmt_of,
    lock_timeout_seconds,
    rows_to_frame,
    temp_prefix,
    write_atomic,
)
from .errors import PsweepError
from .legacy import needs_migration, refusal
from .names import (
    BACKUP_SCRIPT,
    DATABASE,
    JOURNAL_DIR,
    LEGACY_DATABASE,
    MARKER,
    SIMULATE_SUFFIX,
    TMPSAVE,
    counted,
    unsure_psets,
)

if TYPE_CHECKING:
    import pandas as pd
    from filelock import BaseFileLock

IMPORT_ROOTS = "import_roots.json"
OWNER = ".calc_dir"  # in a journal folder elsewhere: the calc dir it belongs to
_BACKUP_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class CalcDir:
    """Where each file of one calc dir lives (nothing is touched until asked)."""

    path: Path

    @property
    def database(self) -> Path:
        return self.path / DATABASE

    @property
    def journal_dir(self) -> Path:
        return self.path / JOURNAL_DIR

    def journal(self, run_id: str) -> Path:
        return self.journal_dir / f"{run_id}{journal.SUFFIX}"

    @property
    def quarantine(self) -> Path:
        """Where journals that could not be merged whole are moved."""
        return self.journal_dir / "quarantine"

    def module_copy(self, run_id: str, relative: str) -> Path:
        """Where a sweep module (path relative to the rootdir) of a session is kept."""
        return self.path / BACKUP_SCRIPT / run_id / relative

    def script_copy(self, run_id: str) -> Path:
        """Where the driver script of a ``ps.run`` is kept."""
        return self.path / BACKUP_SCRIPT / f"{run_id}.py"

    def tmpsave(self, run_id: str, pset_id: str) -> Path:
        return self.path / TMPSAVE / run_id / f"{pset_id}.pk"

    @property
    def import_roots_file(self) -> Path:
        """The folders its sessions' sweep modules were imported from (JSON), for
        reading rows that hold objects of their classes elsewhere (``psweep show``)."""
        return self.path / IMPORT_ROOTS

    def import_roots(self) -> list[str]:
        """The folders of ``import_roots_file``, [] if there are none (yet)."""
        try:
            roots = json.loads(self.import_roots_file.read_text())
        except (OSError, ValueError):
            return []
        return [str(root) for root in roots] if isinstance(roots, list) else []

    def add_import_roots(self, roots: Iterable[str]) -> None:
        """Record more import roots (written whole, so a reader sees all or none)."""
        known = self.import_roots()
        new = [root for root in dict.fromkeys(roots) if root not in known]
        if new:
            text = json.dumps(known + new, indent=1).encode()
            write_atomic(self.import_roots_file, lambda fh: fh.write(text))

    @property
    def simulate(self) -> CalcDir:
        """The calc dir that a simulation of this one writes to."""
        return CalcDir(self.path.with_name(self.path.name + SIMULATE_SUFFIX))

    def backup(self, newest: datetime) -> Path:
        """Where a backup of this calc dir with rows up to ``newest`` goes."""
        return self.path.with_name(f"{self.path.name}_{newest.strftime(_BACKUP_STAMP)}")

    def is_backup(self, folder: Path) -> bool:
        """Is folder a backup of this calc dir?"""
        prefix = self.path.name + "_"
        if folder.parent != self.path.parent or not folder.name.startswith(prefix):
            return False
        try:
            datetime.strptime(folder.name[len(prefix) :], _BACKUP_STAMP)
        except ValueError:
            return False
        return True

    def holds(self, folder: Path) -> bool:
        """Is folder a calc dir of this package (any: it carries ``MARKER``), or this
        calc dir, its simulate copy or a backup of it as made before the marker
        existed? They hold copies of sweep modules that must never be collected. A
        folder merely named like a calc dir (a test package ``calc``) is not one."""
        if (folder / MARKER).is_file():
            return True
        if not (folder in (self.path, self.simulate.path) or self.is_backup(folder)):
            return False
        return any((folder / name).exists() for name in (DATABASE, BACKUP_SCRIPT, JOURNAL_DIR))

    def is_ours(self) -> bool:
        """Was this folder made a calc dir (its marker, or a journal or kept modules
        from before the marker), rather than being merely named like one?"""
        return any((self.path / name).exists() for name in (MARKER, JOURNAL_DIR, BACKUP_SCRIPT))

    def has_database(self) -> bool:
        """Does it hold a database, its own or one psweep wrote?"""
        return self.database.exists() or (self.path / LEGACY_DATABASE).exists()

    def refuse_legacy(self) -> None:
        """A calc dir holding only psweep's database.pk is refused before anything is
        made in it (PsweepError naming ``psweep migrate``); a results.pk that psweep
        wrote is refused when it is read (``Database.read``)."""
        if not self.database.exists() and (self.path / LEGACY_DATABASE).is_file():
            raise refusal(self.path, f"psweep's {LEGACY_DATABASE}")

    def check(self) -> None:
        """Make the calc dir, or say clearly why it cannot be one."""
        if self.path.exists() and not self.path.is_dir():
            raise PsweepError(
                f"calc dir {self.path} is a file, not a folder; choose another "
                "calc dir or move the file away"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.mark()
        self.check_journal_dir()

    def mark(self) -> None:
        """Leave ``MARKER`` in the calc dir (once), by which collection knows it from a
        folder merely named like one; a calc dir that cannot take it (read-only) is
        still known by its name and files."""
        marker = self.path / MARKER
        if not marker.exists():
            with contextlib.suppress(OSError):
                marker.write_text(
                    "A calc dir of pytest-psweep: pytest --psweep never collects in it.\n"
                )

    def check_journal_dir(self) -> None:
        """A journal folder is one calc dir's own. One that lies elsewhere (a link,
        e.g. to a faster disk) is claimed by the first calc dir that uses it, in its
        file ``.calc_dir``; another calc dir linking to it is refused, since it would
        merge the first one's rows."""
        folder = self.journal_dir
        if not folder.exists():
            return
        own = self.path.resolve()
        if folder.resolve() == own / JOURNAL_DIR:
            return
        claim = folder / OWNER
        try:
            owner = claim.read_text().strip()
        except FileNotFoundError:
            claim.write_text(f"{own}\n")  # the first calc dir to use it
            return
        if owner != str(own):
            raise PsweepError(
                f"journal folder {folder} is a link to {folder.resolve()}, the journal "
                f"folder of calc dir {owner}: calc dirs never share journals (one would "
                f"take the other's rows); nothing was run: give {self.path} a journal "
                f"folder of its own (rm {folder}, the link only; or link it elsewhere)"
            )


def is_calc_dir(path: Path) -> bool:
    """Does path name a calc dir (a folder, or a name without suffix) rather than a
    database file (``.pk``, ``.json``)?"""
    return path.is_dir() or not path.suffix


def database_file(path: str | os.PathLike[str]) -> Path:
    """The database file that a path names: a calc dir means its database."""
    path = Path(path)
    return CalcDir(path).database if is_calc_dir(path) else path


def read_database(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The database of a calc dir (None if it has none yet) or of a file (.pk, .json)."""
    path = Path(path)
    if is_calc_dir(path):
        return Database(path).read()
    return df_read(path, fmt_of(path))


class Database:
    """The database file of one calc dir, changed only under its lock."""

    def __init__(
        self,
        calc_dir: CalcDir | str | os.PathLike[str],
        keep_read: bool = False,
        lock_timeout: float | None = None,
    ):
        self.calc_dir = calc_dir if isinstance(calc_dir, CalcDir) else CalcDir(Path(calc_dir))
        self.path = self.calc_dir.database
        self.lock = file_lock(f"{self.path}.lock")
        self.lock_timeout = lock_timeout_seconds() if lock_timeout is None else lock_timeout
        # keep_read: remember the DataFrame read last, and read the file again only
        # once it has been replaced (every write renames a new file into place)
        self._keep_read = keep_read
        self._kept: tuple[tuple[int, int, int], pd.DataFrame] | None = None

    def read(self) -> pd.DataFrame | None:
        """The database, or None when there is none yet. A database that psweep wrote
        is refused (PsweepError naming ``psweep migrate``): appended to as it is, it
        would break every later run."""
        if not self._keep_read:
            return self._checked(df_read(self.path) if self.path.exists() else None)
        try:
            stamp = self._stamp()
        except FileNotFoundError:
            return self._checked(None)
        if self._kept is None or self._kept[0] != stamp:
            self._kept = (stamp, self._checked(df_read(self.path)))
        return self._kept[1]

    def _checked(self, database: pd.DataFrame | None) -> pd.DataFrame | None:
        if database is None:
            self.calc_dir.refuse_legacy()
            return None
        why = needs_migration(database)
        if why is not None:
            raise refusal(self.calc_dir.path, why)
        return database

    def _stamp(self) -> tuple[int, int, int]:
        info = self.path.stat()
        return info.st_ino, info.st_size, info.st_mtime_ns

    def append(
        self,
        rows: Iterable[dict[str, Any]] | pd.DataFrame,
        counters_after: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Append rows (dicts, or a DataFrame of them) under the lock in one atomic
        write: (whole database, new rows).

        Counters continue after the database and after ``counters_after`` (a
        DataFrame the caller appends to in memory). Rows whose ``_pset_id`` is already
        in the database are not added twice.
        """
        new: Any = rows if hasattr(rows, "columns") else rows_to_frame(rows)
        self.calc_dir.check()
        with self._locked():
            self._remove_stale_temps()
            old = self.read()
            if old is not None and "_pset_id" in old and "_pset_id" in new and len(new):
                present = new["_pset_id"].isin(old["_pset_id"])
                if present.any():
                    new = new[~present.to_numpy()].copy()
            if not len(new):
                return (old if old is not None else new), new
            assign_counters(new, old, counters_after)
            self._kept = None  # old is given up column by column (concat's release)
            database = concat(old, new, release=True)
            df_write(database, self.path)
            if self._keep_read:
                self._kept = (self._stamp(), database)
        return database, new

    def replace(self, frame: pd.DataFrame) -> Path | None:
        """Write frame as the whole database, under the lock (``ps.run(df=...)``, as
        psweep writes it). Rows of the file that frame lacks are kept in a backup of
        the calc dir first: its path, or None when nothing would be lost."""
        self.calc_dir.check()
        with self._locked():
            old = self.read()
            kept = None
            if old is not None and len(old):
                ids = frame["_pset_id"] if "_pset_id" in frame else ()
                if not old["_pset_id"].isin(ids).all():
                    kept = backup(self.calc_dir, old)
            df_write(frame, self.path)
        return kept

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the database's lock; say so while another process holds it, and give
        up after ``lock_timeout`` seconds (PsweepError: the rows stay journaled)."""
        try:
            self.lock.acquire(timeout=0)
        except OSError as exc:  # TimeoutError is one: below
            if isinstance(exc, TimeoutError):
                self._wait_for_lock()
            else:
                raise self.unwritable(self.lock.lock_file, exc) from None
        try:
            yield
        finally:
            self.lock.release()

    def unwritable(self, lock_file: str, exc: OSError) -> PsweepError:
        """A lock file cannot be made: a read-only or someone else's calc dir."""
        return PsweepError(
            f"{lock_file} cannot be made ({exc.strerror or exc}): calc dir "
            f"{self.calc_dir.path} is not writable here, and nothing was changed; make it "
            "writable (or copy it to a folder you can write) and run again; reading it "
            f"needs no writing: psweep show {self.calc_dir.path}"
        )

    def _wait_for_lock(self) -> None:
        """Another process holds the lock: say so, wait up to ``lock_timeout``."""
        print(
            f"psweep: waiting for {self.lock.lock_file}, held by another process "
            f"(a session writing this calc dir, or a suspended one); giving up after "
            f"{self.lock_timeout:g} s",
            file=sys.stderr,
            flush=True,
        )
        try:
            self.lock.acquire(timeout=self.lock_timeout)
        except TimeoutError:
            raise PsweepError(
                f"{self.lock.lock_file} was held by another process for "
                f"{self.lock_timeout:g} s; gave up: the rows stay in the journal for "
                "the next run (set --psweep-lock-timeout or PSWEEP_LOCK_TIMEOUT)"
            ) from None

    def _remove_stale_temps(self) -> None:
        """Temp files of writes that were killed (only a lock holder writes one)."""
        for stale in self.path.parent.glob(f"{temp_prefix(self.path)}*.tmp"):
            stale.unlink(missing_ok=True)

    def waiting_rows(self) -> list[dict[str, Any]]:
        """The rows that journals hold and the database does not have yet (of runs
        that were interrupted, or are running), read without changing anything."""
        folder = self.calc_dir.journal_dir
        rows: list[dict[str, Any]] = []
        for path in sorted(folder.glob(f"*{journal.SUFFIX}")) if folder.is_dir() else ():
            try:
                rows.extend(journal.read_journal(path)[0])
            except (journal.Undecodable, OSError):
                continue  # counted by the run that merges it
        return rows

    def orphan_journals(self) -> Iterator[tuple[Path, BaseFileLock]]:
        """Journals of runs that died, each yielded with its lock held."""
        folder = self.calc_dir.journal_dir
        if not folder.is_dir():
            return
        for path in sorted(folder.glob(f"*{journal.SUFFIX}")):
            lock = file_lock(journal.lock_path(path))
            try:
                lock.acquire(timeout=0)
            except TimeoutError:  # filelock's Timeout is one
                continue  # a live run writes this one
            except OSError as exc:
                raise self.unwritable(lock.lock_file, exc) from None
            try:
                if path.exists():
                    yield path, lock
            finally:
                lock.release()

    def recover(self, strict: bool = False) -> Recovery:
        """Merge the journals of dead runs into the database.

        A damaged journal gives what it still holds and goes to the quarantine
        folder; a journal whose rows hold objects of classes that cannot be imported
        here stays where it is for a process that can (``strict``: a PsweepError).
        Neither stops this run. A database that cannot be read or written is a
        PsweepError, and the journals stay.
        """
        recovery = Recovery()
        self.calc_dir.check_journal_dir()
        for path, lock in self.orphan_journals():
            try:
                unsure: list[dict[str, Any]] = []  # started, their rows maybe lost
                rows, damaged = journal.read_journal(path, unsure)
            except journal.Undecodable as exc:
                problem = (
                    f"journal {path} holds objects whose classes cannot be imported "
                    f"here ({exc}); it is kept: make their modules importable and run "
                    f"'psweep recover {self.calc_dir.path}'"
                )
                if strict:
                    raise PsweepError(problem) from exc
                recovery.deferred.append(problem)
                continue
            except OSError as exc:
                raise PsweepError(
                    f"journal {path} cannot be read ({exc.strerror or exc}); it is kept"
                ) from exc
            try:
                _, new = self.append(rows)
            except PsweepError:
                raise
            except Exception as exc:  # rows that cannot make a database together
                damaged, new = damaged + len(rows), []
                rows = []
                cause = f"{type(exc).__name__}: {exc}"
            else:
                cause = "damaged records"
            recovery.saved += len(new)
            if damaged:
                target = self._quarantine(path)
                recovery.quarantined.append(
                    f"journal {path} was damaged ({cause}): {counted(len(rows), 'row')} kept, "
                    f"{counted(damaged, 'record')} lost{unsure_psets(len(unsure), 'records')}; "
                    f"moved to {target}"
                )
            else:
                path.unlink(missing_ok=True)
            Path(lock.lock_file).unlink(missing_ok=True)
        self._remove_stale_marks()
        return recovery

    def _remove_stale_marks(self) -> None:
        """Start marks of ``ps.run`` on an executor whose run ended without removing
        them (a killed driver): its journal is gone, merged above or never written."""
        folder = self.calc_dir.journal_dir
        for marks in folder.glob("*.started") if folder.is_dir() else ():
            if not self.calc_dir.journal(marks.name[: -len(".started")]).exists():
                shutil.rmtree(marks, ignore_errors=True)

    def _quarantine(self, path: Path) -> Path:
        """Move a journal that cannot be merged whole out of every later run's way."""
        folder = self.calc_dir.quarantine
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        os.replace(path, target)
        return target


@dataclass
class Recovery:
    """What merging the journals of dead runs did."""

    saved: int = 0  # rows appended to the database
    deferred: list[str] = field(default_factory=list)  # journals left for later, why
    quarantined: list[str] = field(default_factory=list)  # journals moved away, counts

    @property
    def notes(self) -> list[str]:
        return self.deferred + self.quarantined
