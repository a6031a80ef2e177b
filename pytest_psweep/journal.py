"""The journal: one run's rows, each appended as soon as it exists.

A record is a 13-byte header (the magic ``PSWJ``, a kind byte, the payload's length
and the CRC-32 of kind and payload) and the pickled row. Kinds: ``R``, a finished
row; ``S``, a pset that started (its parameters and book-keeping, ``_outcome =
"crashed"``): a started pset that has no finished row when the journal is merged
died with its process, and becomes a ``crashed`` row; ``C``, a started pset taken
back (it raised or was interrupted). A serial ``ps.run`` journals its psets ahead, a
chunk at a time (``P``: the first index and each pset's parameters and book-keeping;
fewer psets with big parameters), and then each start as its index and time (``I``,
16 bytes): one small record per pset before its row, not a second row; the reader
makes a started one without a row a ``crashed`` row. A record that is damaged (a
short write on a full disk, garbage, a zero-filled tail after a power loss, a flipped
bit, a payload that is not a row) costs that record only: the reader finds the next
record by its magic and checksum.

The run holds the journal's lock while it lives, so a journal whose lock nobody
holds was left by a run that died (``calcdir.Database.recover`` merges it). Where
journals live is ``calcdir``'s business; this module is given the file.
"""

from __future__ import annotations

import errno
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .database import Columns, file_lock
from .errors import PsweepError

SUFFIX = ".jnl"
FINISHED = b"R"
STARTED = b"S"
CANCELLED = b"C"  # a started pset that was interrupted (Ctrl-C): no row
# a serial ps.run's psets as they would start, journaled ahead a chunk at a time, and
# a pset's start as its index and time: one small record per pset instead of its row
PLANNED = b"P"
STARTED_AT = b"I"
_MAGIC = b"PSWJ"
_HEADER = struct.Struct("<4scII")  # magic, kind, payload length, CRC-32 of the payload
_MAX_PAYLOAD = 1 << 31
_KINDS = (FINISHED, STARTED, CANCELLED, PLANNED, STARTED_AT)
_STARTED_AT = struct.Struct("<Qq")  # index in the plan, start in microseconds


def _crc(kind: bytes, payload: bytes) -> int:
    """A record's checksum: of its kind too, so that a flipped bit that turns one
    kind into another ('S' and 'R' differ in one) is damage, not another record."""
    return zlib.crc32(payload, zlib.crc32(kind))


def _checked(kind: bytes, payload: bytes, crc: int) -> bool:
    """Is crc the record's checksum? An earlier version's covers the payload only."""
    return crc == _crc(kind, payload) or crc == zlib.crc32(payload)


def encode_row(row: dict[str, Any], kind: bytes = FINISHED) -> bytes:
    """One journal record for row; a value that cannot be pickled, or pickles but
    cannot be unpickled again, is named in the error (a PsweepError)."""
    try:
        payload = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        bad = sorted(set(row) - set(without_unpicklable(row)))
        raise PsweepError(
            f"pset {row.get('_pset_id')}: the value of key(s) {', '.join(map(repr, bad))} "
            f"cannot be pickled ({type(exc).__name__}: {exc}); return plain numbers, "
            "strings, arrays or save it as a file under _calc_dir/_pset_id"
        ) from exc
    if not _plain(row):
        _check_round_trip(row, payload)
    return _HEADER.pack(_MAGIC, kind, len(payload), _crc(kind, payload)) + payload


_PLAIN_TYPES = frozenset((int, float, str, bool, type(None), bytes, complex))


def _plain(row: dict[str, Any]) -> bool:
    """Only values of builtin scalar types, which always unpickle (the common row)."""
    return _PLAIN_TYPES.issuperset(map(type, row.values()))


def _check_round_trip(row: dict[str, Any], payload: bytes) -> None:
    """A value that pickles but cannot be unpickled (e.g. an exception whose __init__
    takes other arguments) would make the whole record unreadable later: find it now.
    A class that cannot be imported here is not checked (another process may)."""
    try:
        pickle.loads(payload)
        return
    except (ImportError, AttributeError):
        return
    except Exception:
        pass
    bad = []
    for key, value in row.items():
        try:
            pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        except (ImportError, AttributeError):
            continue
        except Exception as exc:
            bad.append(f"{key!r} ({type(exc).__name__}: {exc})")
    if not bad:  # the row as a whole failed, no single value: name nothing wrongly
        bad.append("(the row as a whole)")
    raise PsweepError(
        f"pset {row.get('_pset_id')}: the value of key(s) {', '.join(bad)} cannot be "
        "unpickled again; return plain numbers, strings, arrays, or objects whose "
        "classes pickle (e.g. give an exception class a __reduce__)"
    )


def with_outcome(record: bytes, outcome: str) -> bytes:
    """A finished row's record with another ``_outcome``. Only in the process that
    made the record, which can import every class its row holds."""
    row = pickle.loads(record[_HEADER.size :])
    row["_outcome"] = outcome
    return encode_row(row)


def encode_cancel(pset_id: str) -> bytes:
    """The record that takes back a started pset's record: it was interrupted, and an
    interrupted pset gets no row."""
    payload = pset_id.encode()
    return _HEADER.pack(_MAGIC, CANCELLED, len(payload), _crc(CANCELLED, payload)) + payload


# the error of a planned pset that started and has no row: ps.run's process died
CRASHED = (
    "the process running this pset died before it finished (a crash, a kill, os._exit, "
    "out of memory)"
)


def encode_plan(first: int, rows: list[dict[str, Any]]) -> bytes:
    """The record of planned psets ``first``, ``first + 1``, ...: each its parameters
    and book-keeping as it would start; a started one without a row is made a
    ``crashed`` row by the reader. A value that cannot be pickled, or unpickled
    again, is left out of its row (the function will name it when the pset runs)."""
    try:
        payload = pickle.dumps((first, rows), protocol=pickle.HIGHEST_PROTOCOL)
        whole = all(map(_plain, rows)) or _unpickles(payload)
    except Exception:
        whole = False
    if not whole:
        kept = [without_unpicklable(row) for row in rows]
        payload = pickle.dumps((first, kept), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(_MAGIC, PLANNED, len(payload), _crc(PLANNED, payload)) + payload


def _unpickles(payload: bytes) -> bool:
    """Does payload unpickle here (or hold a class only not importable here)?"""
    try:
        pickle.loads(payload)
    except (ImportError, AttributeError):
        return True
    except Exception:
        return False
    return True


def encode_started_at(index: int, start_us: int) -> bytes:
    """The record that planned pset ``index`` started at ``start_us`` (microseconds
    since the epoch): if no finished row or cancel follows, it crashed."""
    payload = _STARTED_AT.pack(index, start_us)
    return _HEADER.pack(_MAGIC, STARTED_AT, len(payload), _crc(STARTED_AT, payload)) + payload


def encode_row_keeping(row: dict[str, Any], kind: bytes = FINISHED) -> tuple[bytes, str | None]:
    """The record of a row, and what was wrong if parts of it could not be pickled or
    unpickled (those values are then left out of the record, the rest is kept)."""
    try:
        return encode_row(row, kind), None
    except PsweepError as exc:
        return encode_row(without_unpicklable(row), kind), str(exc)


def without_unpicklable(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of row without the values that cannot be pickled and unpickled."""
    kept = {}
    for key, value in row.items():
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            continue
        try:
            pickle.loads(payload)
        except (ImportError, AttributeError):
            pass  # its class is only not importable here
        except Exception:
            continue
        kept[key] = value
    return kept


class Undecodable(Exception):
    """A record whose row holds an object of a class that cannot be imported here
    (yet): not damage, the journal is kept for a process that can import it."""


class Decoder:
    """Turns journal bytes into rows, fed as they come (a growing journal) or at once.

    Finished rows come out of ``feed``; a started pset is held until its finished
    row arrives, and ``crashed`` gives those that never did. ``damaged`` counts the
    records lost to damage: a started pset with damage after its start may have its
    finished row in the bytes lost, so it is no crash; ``crashed`` leaves it in
    ``unsure`` (said, never made a ``crashed`` row of a pset that may have passed).
    """

    def __init__(self) -> None:
        self.records = 0  # whole records read, of every kind
        self.damaged = 0
        self.lost = 0  # bytes of damaged records
        self.started: dict[str, dict[str, Any]] = {}
        self.planned: dict[int, dict[str, Any]] = {}  # by index, until started
        self.unsure: list[dict[str, Any]] = []  # started, damage after: see crashed
        self._damage_at_start: dict[str, int] = {}  # damage counted when a pset started
        self._pending = b""
        self._skipping = False  # inside damage: counted once until a record is whole

    def feed(self, data: bytes, final: bool = False) -> Iterator[dict[str, Any]]:
        """The finished rows in ``data`` (after what was fed before). ``final``: no
        more bytes will come, so a record cut short is damage, not pending.

        Raises Undecodable at a record whose classes cannot be imported; feeding again
        (with ``b""``) retries from that record.
        """
        blob = self._pending + data
        pos, size = 0, len(blob)
        try:
            while pos < size:
                if blob.startswith(_MAGIC, pos):
                    if pos + _HEADER.size > size:
                        if not final:
                            break  # a header being written
                    else:
                        _, kind, length, crc = _HEADER.unpack_from(blob, pos)
                        end = pos + _HEADER.size + length
                        if kind in _KINDS and length < _MAX_PAYLOAD:
                            if end > size and not final:
                                break  # a payload being written
                            payload = blob[pos + _HEADER.size : end]
                            if end <= size and _checked(kind, payload, crc):
                                if kind == CANCELLED:
                                    self._end(payload.decode(errors="replace"))
                                    row = None
                                elif kind == PLANNED or kind == STARTED_AT:
                                    if not self._plan(kind, payload):  # may raise
                                        self.lost += end - pos  # a payload that is no plan
                                    row = None
                                else:
                                    row = self._decode(payload)  # may raise: pos stays
                                    if row is None:  # a payload that is no row
                                        self.lost += end - pos
                                pos = end
                                self.records += 1
                                self._skipping = False
                                if row is None:
                                    continue
                                if kind == STARTED:
                                    self._start(row)
                                    continue
                                self._end(row["_pset_id"])
                                yield row
                                continue
                elif not final and _MAGIC.startswith(blob[pos : pos + len(_MAGIC)]):
                    break  # the start of a magic being written
                # damage: what lies here is lost; the next record may start at a magic
                if not self._skipping:
                    self.damaged += 1
                    self._skipping = True
                found = blob.find(_MAGIC, pos + 1)
                if found < 0:
                    # keep a tail that may be the start of a magic still being written
                    skipped = size if final else max(pos + 1, size - len(_MAGIC) + 1)
                    self.lost += skipped - pos
                    pos = skipped
                    break
                self.lost += found - pos
                pos = found
        finally:
            self._pending = blob[pos:]

    def _decode(self, payload: bytes) -> dict[str, Any] | None:
        """The row of a payload whose checksum is right; None (and counted) if it is
        no row; Undecodable if its classes cannot be imported here."""
        try:
            row = pickle.loads(payload)
        except (ImportError, AttributeError) as exc:
            raise Undecodable(f"{type(exc).__name__}: {exc}") from exc
        except Exception:
            self.damaged += 1
            return None
        if not _is_row(row):
            self.damaged += 1
            return None
        return row  # type: ignore[no-any-return]

    def _plan(self, kind: bytes, payload: bytes) -> bool:
        """Take in planned psets, or the start of one (which makes it a started pset).
        False (and counted as damage) for a payload that is neither; Undecodable if
        its classes cannot be imported here."""
        if kind == STARTED_AT:
            if len(payload) != _STARTED_AT.size:
                self.damaged += 1
                return False
            index, start_us = _STARTED_AT.unpack(payload)
            row = self.planned.pop(index, None)
            if row is not None:  # as finishing it would, with nothing returned
                row["_time_utc"] = start_us
                row.setdefault("_pset_runtime", 0.0)
                row["_outcome"] = "crashed"
                row.setdefault("_error", CRASHED)  # an earlier version's plan has one
                self._start(row)
            return True
        try:
            first, rows = pickle.loads(payload)
        except (ImportError, AttributeError) as exc:
            raise Undecodable(f"{type(exc).__name__}: {exc}") from exc
        except Exception:
            self.damaged += 1
            return False
        if type(first) is not int or type(rows) is not list or not all(map(_is_row, rows)):
            self.damaged += 1
            return False
        self.planned.update(enumerate(rows, first))
        return True

    def _start(self, row: dict[str, Any]) -> None:
        self.started[row["_pset_id"]] = row
        self._damage_at_start[row["_pset_id"]] = self.damaged

    def _end(self, pset_id: str) -> None:
        self.started.pop(pset_id, None)
        self._damage_at_start.pop(pset_id, None)

    def crashed(self) -> list[dict[str, Any]]:
        """The started psets that have no finished row and no damage after their
        start: they died with their process. The others go to ``unsure``."""
        rows: list[dict[str, Any]] = []
        for pset_id, row in self.started.items():
            sure = self._damage_at_start.get(pset_id) == self.damaged
            (rows if sure else self.unsure).append(row)
        self.started.clear()
        self._damage_at_start.clear()
        self.planned.clear()  # planned psets that never started get no row
        return rows


def _is_row(row: Any) -> bool:
    """A dict with the book-keeping a row is appended by (string keys, a start time in
    wire form, a pset id): anything else would break every later merge."""
    return (
        type(row) is dict
        and all(type(key) is str for key in row)
        and type(row.get("_time_utc")) is int
        and type(row.get("_pset_id")) is str
        and type(row.get("_run_id")) is str
    )


def read_journal(
    path: str | os.PathLike[str], unsure: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The rows of a journal file (finished ones, then crashed ones) and the number
    of records lost to damage; ``unsure`` gets the started psets that are no crash
    (``Decoder.unsure``). Raises Undecodable (see ``Decoder.feed``)."""
    blob = Path(path).read_bytes()
    if blob and not blob.startswith(_MAGIC):
        legacy = _read_legacy(blob)
        if legacy is not None:
            return legacy
    decoder = Decoder()
    rows = list(decoder.feed(blob, final=True))
    rows += decoder.crashed()
    if unsure is not None:
        unsure += decoder.unsure
    return rows, decoder.damaged


_LEGACY_HEADER = struct.Struct("<Q")


def _read_legacy(blob: bytes) -> tuple[list[dict[str, Any]], int] | None:
    """The rows of a journal that an earlier version wrote (an 8-byte length, then
    the pickled row, no checksum), so that an upgrade loses none; None if blob is not
    one. A record cut short at the end counts as damaged."""
    rows: list[dict[str, Any]] = []
    pos, size = 0, len(blob)
    while pos + _LEGACY_HEADER.size <= size:
        (length,) = _LEGACY_HEADER.unpack_from(blob, pos)
        start = pos + _LEGACY_HEADER.size
        if start + length > size:
            break
        try:
            row = pickle.loads(blob[start : start + length])
        except (ImportError, AttributeError) as exc:
            if not rows:  # garbage may look like anything: not known to be a journal
                return None
            raise Undecodable(f"{type(exc).__name__}: {exc}") from exc
        except Exception:
            return None
        if not _is_row(row):
            return None
        rows.append(row)
        pos = start + length
    if not rows:
        return None
    return rows, int(pos < size)


class JournalTail:
    """Reads a journal while another process appends to it: the finished rows of the
    records written so far, column by column, each record decoded once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows = Columns()
        self.decoder = Decoder()
        self._offset = 0

    def read(self, final: bool = False) -> None:
        """Take in the records written since the last read (``final``: all of them
        are written). Raises Undecodable; reading again retries."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                blob = fh.read()
        except FileNotFoundError:
            return  # no row finished yet
        self._offset += len(blob)
        for row in self.decoder.feed(blob, final):
            self.rows.add(row)
        if final:
            for row in self.decoder.crashed():
                self.rows.add(row)


class Journal:
    """Append-only file of one run's rows, so that a kill loses none of them.

    Each record is written as soon as it exists (no fsync: it must survive the
    process, and the operating system keeps what was written); a failed write is a
    PsweepError naming the file, and what was written before stays readable.
    """

    def __init__(
        self, path: str | os.PathLike[str], lock: bool = True, readable: bool = False
    ) -> None:
        self.path = Path(path)
        self._lock = file_lock(lock_path(self.path)) if lock else None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # lock first: a journal without a held lock is taken as left by a dead run
            # (a shard's journal has none: nobody merges it as a dead run's)
            if self._lock is not None:
                self._lock.acquire()
            # readable: the writer can read back what it wrote if the file was taken away
            mode = os.O_RDWR if readable else os.O_WRONLY
            self._fd: int | None = os.open(self.path, mode | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise self._write_error(exc, "make the calc dir writable or choose another") from exc

    def append(self, record: bytes) -> None:
        """Append one encoded record (``encode_row``), whole or with an error."""
        assert self._fd is not None, "the journal is closed"
        view = memoryview(record)
        try:
            while view:
                written = os.write(self._fd, view)
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as exc:
            raise self._write_error(exc, "the rows journaled before are kept in it") from exc

    def _write_error(self, exc: OSError, then: str) -> PsweepError:
        return PsweepError(f"journal {self.path} cannot be written ({exc.strerror or exc}); {then}")

    def close(self, remove: bool) -> None:
        """Stop writing; remove the file once its rows are in the database."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if remove:
            self.path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            if remove:
                Path(self._lock.lock_file).unlink(missing_ok=True)


def lock_path(journal: Path) -> str:
    """The lock file that a live run holds for its journal."""
    return f"{journal}.lock"
