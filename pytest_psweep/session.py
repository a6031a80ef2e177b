"""A run's hold on one calc dir, shared by ``ps.run`` and the plugin's controller.

``CalcSession`` is the only way a run touches its calc dir: before the first pset it
merges what interrupted runs left, makes the backup or the simulate copy and (for a
pytest session) starts the writer process; while psets finish it journals each row;
at the end it appends them to the database; and it answers what a run asks of the
database before it starts (done psets, the baseline of a comparison).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import compare, shards
from .calcdir import CalcDir, Database, Recovery, read_database
from .copies import backup, copy_source, make_simulate_copy
from .database import latest_passed, lock_timeout_seconds, row_keys, rows_to_frame, write_atomic
from .errors import PsweepError
from .journal import (
    Journal,
    encode_cancel,
    encode_plan,
    encode_row,
    encode_started_at,
    read_journal,
)
from .names import RowKey

if TYPE_CHECKING:
    import pandas as pd

    from .writer import WriterProcess

_UNREAD: Any = object()


class CalcSession:
    """One run (a ``ps.run`` call or a pytest session) on one calc dir.

    Nothing is touched before ``open``; the questions about the database before the
    run (``before``, ``done``, ``baseline``) may be asked without it, as a dry run does.
    """

    def __init__(
        self,
        calc_dir: str | os.PathLike[str],
        run_id: str,
        simulate: bool = False,
        backup: bool = False,
        lock_timeout: float | None = None,
        shard: shards.Shard | None = None,
        chosen_run_id: bool = False,
    ) -> None:
        self.calc_dir = CalcDir(Path(calc_dir))
        # a job array's task: its rows stay in a file of its own (shards.py)
        self.shard = shard
        self._shard_journal = shards.new_journal(self.calc_dir, run_id, shard) if shard else None
        # where this run's rows go
        self.target = self.calc_dir.simulate if simulate else self.calc_dir
        self.run_id = run_id
        # a run id the user chose may be shared by sessions: journals need names of their own
        self._journal_name = f"{run_id}.{os.urandom(6).hex()}" if chosen_run_id else run_id
        self.simulate = simulate
        self.backup = backup
        # pset folders made since are this run's, not the copy's (xdist: the workers
        # may run psets before the first row opens the calc dir and copies it)
        self.began = time.time()
        self.lock_timeout = lock_timeout_seconds(lock_timeout)
        self.recovery = Recovery()  # what open() merged of interrupted runs
        self.writer: WriterProcess | None = None
        self.count = 0  # rows journaled by this run
        # an append cut short (a Ctrl-C between its write and the count, or within the
        # write): one more record, whole, may be in the journal than ``count`` says
        self.cut_short = False
        self._journal: Journal | None = None
        self._rows: list[dict[str, Any]] = []  # rows given by record(), not encoded ones
        self._before: pd.DataFrame | None = _UNREAD
        self._written: pd.DataFrame | None = _UNREAD

    # -- before the first pset ---------------------------------------------------------

    def open(self, with_writer: bool = False, journal: bool = True) -> None:
        """Make the calc dir ready before the first pset: merge rows of interrupted
        runs, back up or make the simulate copy, open this run's journal (so that a
        calc dir that cannot be written is known now), start the writer if asked.

        A file that cannot be read or written is a PsweepError naming it.
        """
        try:
            # a simulation on a fresh calc dir makes <calc_dir>.simulate only, as psweep
            self.calc_dir.refuse_legacy()
            if self._shard_journal is not None:  # never the database: no merge
                self.calc_dir.check()
                self._journal = shards.ShardJournal(self._shard_journal)
                shards.check_count(self._shard_journal, self._journal)
                return
            if not (self.simulate and not self.calc_dir.path.exists()):
                self.calc_dir.check()
                database = Database(self.calc_dir, lock_timeout=self.lock_timeout)
                self.recovery = database.recover()
            if self.simulate:
                make_simulate_copy(self.calc_dir, self.began)
            elif self.backup:
                backup(self.calc_dir, database.read(), self.began)
            if journal:  # the target exists: it is the calc dir, or its simulate copy
                self._journal = Journal(self.journal_path)
        except OSError as exc:
            where = exc.filename or self.calc_dir.path
            raise PsweepError(
                f"calc dir {self.calc_dir.path}: {where} cannot be written "
                f"({exc.strerror or exc}); nothing ran, the database is as it was"
            ) from exc
        if with_writer:
            # imported here, not at the top: the module runs as the writer's __main__,
            # and must not be imported by the package before it runs there
            from .writer import WriterProcess

            self.writer = WriterProcess(self.target, self.journal_path, self.lock_timeout)

    def wait_until_checked(self) -> None:
        """Wait until the writer has read the database; PsweepError if it cannot be.
        Call before the first pset runs, so that no pset runs for a database that
        cannot take its row."""
        if self.writer is not None and self.target.has_database():
            self.writer.wait_ready()

    def before(self) -> pd.DataFrame | None:
        """The database as it was before this run (read once, when first asked)."""
        if self._before is _UNREAD:
            self._before = read_database(self.calc_dir.path)
        return self._before

    def done(self) -> set[RowKey]:
        """The keys (``database.row_keys``) of the psets that have a passed row."""
        before = self.before()
        if self.shard is not None:  # rows of other tasks that wait to be merged
            from .database import concat

            waiting = shards.waiting_rows(self.calc_dir)
            if waiting:
                before = concat(before, rows_to_frame(waiting))
        latest = latest_passed(before)
        if latest is None:
            return set()
        return set(row_keys(latest))

    def baseline(self, path: Path) -> dict[RowKey, dict[str, Any]]:
        """The latest passed row per key of a baseline database; this
        calc dir's means the database before this run."""
        own = path == self.calc_dir.database
        database = self.before() if own else read_database(path)
        if database is not None and len(database) and not own:
            missing = [c for c in ("_sweep", "_pset_hash", "_outcome") if c not in database]
            if missing:
                raise PsweepError(
                    f"baseline {path} has no column(s) {', '.join(missing)}: it is not a "
                    "database that pytest --psweep wrote; make one with "
                    f"'psweep export CALC_DIR {path.name}'"
                )
        return compare.baseline_index(database)

    # -- while psets finish ------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        """Where this run's rows are journaled (the file exists once one is)."""
        if self._shard_journal is not None:
            return self._shard_journal
        return self.target.journal(self._journal_name)

    @property
    def journaling(self) -> bool:
        """Is the journal open (``open`` succeeded, the run has not finished)?"""
        return self._journal is not None

    def record(self, row: dict[str, Any]) -> None:
        """Journal a finished row (a value that cannot be pickled is a PsweepError)."""
        self.record_encoded(encode_row(row))
        self._rows.append(row)

    def record_planned(self, first: int, rows: list[dict[str, Any]]) -> None:
        """Journal psets ``first``, ``first + 1``, ... as they start (parameters and
        book-keeping): a planned pset becomes a (``crashed``) row only once
        ``record_started_at`` names it."""
        if self._journal is not None:
            self._journal.append(encode_plan(first, rows))

    def record_started_at(self, index: int, start_us: int) -> None:
        """Journal that planned pset ``index`` started: the next run merges it as a
        ``crashed`` row if this process dies before its row or ``record_ended``."""
        if self._journal is not None:
            self._journal.append(encode_started_at(index, start_us))

    def record_ended(self, pset_id: str) -> None:
        """Take back the "started" record of ``pset_id``: it finished, or failed."""
        if self._journal is not None:
            self._journal.append(encode_cancel(pset_id))

    def record_encoded(self, record: bytes) -> None:
        """Journal a row encoded where it was made (e.g. an xdist worker); it is read
        back from the journal at the end, so a long session keeps no rows in memory."""
        if self._journal is None:
            raise PsweepError(f"psweep: the journal of {self.target.path} is not open")
        try:
            self._journal.append(record)
            self.count += 1
        except BaseException:
            self.cut_short = True
            raise

    def order_rows(self, rows: list[dict[str, Any]]) -> None:
        """The rows given to ``record``, in the order the database gets them (an
        executor finishes psets in any order; the database has them as params)."""
        if len(rows) == len(self._rows):
            self._rows = list(rows)

    def tmpsave(self, row: dict[str, Any]) -> None:
        """Also write one row to its own file (``ps.run(tmpsave=True)``): the row as a
        dict, its ``_time_utc`` a UTC timestamp, as psweep writes it."""
        import pandas as pd

        kept = dict(row)
        kept["_time_utc"] = pd.Timestamp(row["_time_utc"], unit="us", tz="UTC")
        path = self.target.tmpsave(self.run_id, row["_pset_id"])
        write_atomic(path, lambda fh: pickle.dump(kept, fh, pickle.HIGHEST_PROTOCOL))

    def keep_module(self, source: Path, relative: str) -> None:
        """Copy a sweep module that made rows into the calc dir."""
        if source.is_file():
            copy_source(source, self.target.module_copy(self.run_id, relative))

    def keep_script(self, source: str | os.PathLike[str]) -> None:
        """Copy the driver script of a ``ps.run`` into the calc dir."""
        copy_source(source, self.target.script_copy(self.run_id))

    # -- at the end --------------------------------------------------------------------

    def finish(
        self, counters_after: pd.DataFrame | None = None
    ) -> tuple[pd.DataFrame | None, pd.DataFrame]:
        """Append the rows to the database in this process, in one atomic write:
        (database, new rows). If that fails, the journal stays for the next run."""
        database = Database(self.target, lock_timeout=self.lock_timeout)
        if not self.count and not self.cut_short:
            if self._journal is not None:
                self._close_journal(remove=True)
            return database.read(), rows_to_frame([])
        if len(self._rows) == self.count and not self.cut_short:
            rows = self._rows
        else:
            rows = read_journal(self.journal_path)[0]
        whole, new = database.append(rows, counters_after=counters_after)
        self._close_journal(remove=True)
        return whole, new

    def finish_in_writer(self, import_roots: Sequence[str] = ()) -> int:
        """Have the writer process append the journal; the number of rows written.
        If it cannot, the journal stays for the next run (PsweepError).
        ``import_roots``: see ``WriterProcess.append_journal``."""
        assert self.writer is not None, "open(with_writer=True) first"
        if not self.count and not self.cut_short:
            self.writer.close()
            if self._journal is not None:
                self._close_journal(remove=True)
            return 0
        try:
            written = self.writer.append_journal(self.count, import_roots, self.cut_short)
        except PsweepError:
            self._close_journal(remove=False)
            raise
        self._close_journal(remove=True)
        with contextlib.suppress(PsweepError):  # the rows are written: a note only
            self.target.add_import_roots(import_roots)
        return written

    def finish_shard(self) -> Path | None:
        """A shard session's end: its journal becomes the ended shard's file, for
        ``psweep merge``; that file, or None without rows."""
        assert isinstance(self._journal, shards.ShardJournal) or self._journal is None
        if self._journal is None:
            return None
        shard_journal, self._journal = self._journal, None
        return shard_journal.end(keep=bool(self.count))

    def write_manifest(
        self, counts: dict[str, int], import_roots: list[str], totals: dict[str, int]
    ) -> None:
        """A shard session's psets per sweep (and all shards' together), for
        ``psweep merge``'s count of what is missing."""
        assert self._shard_journal is not None and self.shard is not None
        shards.write_manifest(
            self._shard_journal, self.run_id, self.shard, counts, import_roots, totals
        )

    def written(self) -> pd.DataFrame | None:
        """The database as this run left it (read once: the finish hook, a CI job's
        summary and the report all ask)."""
        if self._written is _UNREAD:
            self._written = Database(self.target).read()
        return self._written

    def close(self) -> None:
        """End the writer process, if there is one, and stop journaling: a journal
        that holds rows not yet in the database stays for the next run."""
        if self.writer is not None:
            self.writer.close()
        if self._journal is not None:
            self._close_journal(remove=not self.count)

    def _close_journal(self, remove: bool) -> None:
        assert self._journal is not None
        self._journal.close(remove=remove)
        self._journal = None
