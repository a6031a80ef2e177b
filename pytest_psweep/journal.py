"""The journal: one run's finished rows, each appended as soon as it exists.

A record is an 8-byte little-endian length and the pickled row. The run holds the
journal's lock while it lives, so a journal whose lock nobody holds was left by a run
that died (``calcdir.Database.recover`` merges it). Where journals live is
``calcdir``'s business; this module is given the file.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .database import Columns, file_lock
from .errors import PsweepError

SUFFIX = ".jnl"
_HEADER = struct.Struct("<Q")


def encode_row(row: dict[str, Any]) -> bytes:
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
    return _HEADER.pack(len(payload)) + payload


def encode_row_keeping(row: dict[str, Any]) -> tuple[bytes, str | None]:
    """The record of a row, and what was wrong if parts of it could not be pickled
    (those values are then left out of the record, the rest is kept)."""
    try:
        return encode_row(row), None
    except PsweepError as exc:
        return encode_row(without_unpicklable(row)), str(exc)


def without_unpicklable(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of row without the values that cannot be pickled."""
    kept = {}
    for key, value in row.items():
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            continue
        kept[key] = value
    return kept


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a journal file; a record cut short by a kill is dropped."""
    blob = Path(path).read_bytes()
    return [pickle.loads(blob[start:end]) for start, end in record_spans(blob)]


def record_spans(blob: bytes) -> Iterator[tuple[int, int]]:
    """Where the payloads of the whole records in blob start and end."""
    pos, size = 0, len(blob)
    while pos + _HEADER.size <= size:
        (length,) = _HEADER.unpack_from(blob, pos)
        start = pos + _HEADER.size
        if start + length > size:
            return
        yield start, start + length
        pos = start + length


class JournalTail:
    """Reads a journal while another process appends to it: the rows of the records
    written so far, column by column, each record decoded once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
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
            for start, end in record_spans(data):
                self.rows.add(pickle.loads(data[start:end]))
                used = end
        finally:  # a record that cannot be decoded (yet) is the first one kept
            self._pending = data[used:]


class Journal:
    """Append-only file of one run's finished rows, so that a kill loses none of them.

    Each row is written with one ``os.write`` as soon as it exists (no fsync: it must
    survive the process, and the operating system keeps what was written).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # lock first: a journal without a held lock is taken as left by a dead run
        self._lock = file_lock(lock_path(self.path))
        self._lock.acquire()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, record: bytes) -> None:
        """Append one encoded row (``encode_row``)."""
        assert self._fd is not None, "the journal is closed"
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


def lock_path(journal: Path) -> str:
    """The lock file that a live run holds for its journal."""
    return f"{journal}.lock"
