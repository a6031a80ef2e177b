"""Job-array shards (SPEC §7): which psets a task runs, where it leaves its rows, and
how ``psweep merge`` (``merge.py``) and ``psweep status`` (``status.py``) read them.

A shard session (``--psweep-shard=I/N``) runs the psets whose ``int(_pset_hash, 16)
% N == I``, chosen while collecting, before items exist. It never touches the
database: a shared filesystem may have no reliable lock, and a write of the whole
database per task costs O(database) each time. It journals its rows to a file of
its own under ``<calc_dir>/shards/`` (no lock needed: nobody else writes it):

* ``<run>.<I>of<N>.<token>.jnl`` while the task runs, or after it was killed;
* ``<run>.<I>of<N>.<token>.shard`` once it ended (the same bytes, renamed);
* ``<run>.<I>of<N>.<token>.json``, its manifest: how many psets each sweep has
  in this shard and in all, where its modules are imported from, and at its end
  what its rows say (a ``liveness.Tally``).

A running task proves it lives twice over: it holds an ``flock`` on
``<journal>.lock`` and writes its tally into that file every ``PSWEEP_HEARTBEAT``
seconds (10), whose mtime is a heartbeat for shared filesystems where ``flock``
does not reach other nodes. A journal is only ever removed by a merge once its task
is known dead (``liveness.alive``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from . import journal, liveness
from .calcdir import CalcDir
from .database import write_atomic
from .errors import PsweepError

SHARDS_DIR = "shards"
ENDED = ".shard"  # the journal of a shard session that ended
MANIFEST = ".json"
_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")  # no ".", "..", hidden
FILE = re.compile(r"(?P<run>.+)\.(?P<index>\d+)of(?P<count>\d+)\.(?P<token>[0-9a-f]+)$")
# the namespace of run ids made from a SLURM array job's id (uuid5)
_SLURM_NAMESPACE = uuid.UUID("5b0e6b52-4c4f-4b8e-9a53-2f1e4a7d0c11")
HEARTBEAT_ENV = "PSWEEP_HEARTBEAT"


class Shard(NamedTuple):
    i: int  # this shard, 0-based
    n: int  # of this many

    @property
    def label(self) -> str:
        """The ``_shard`` column: ``"I/N"``."""
        return f"{self.i}/{self.n}"

    def owns(self, digest: str) -> bool:
        """Does the pset with this ``_pset_hash`` belong to this shard?"""
        return shard_of(digest, self.n) == self.i


def shard_of(digest: str, n: int) -> int:
    """The shard, of n, of the pset with this ``_pset_hash`` (stable when the grid
    grows: it depends on the pset alone)."""
    return int(digest, 16) % n


def parse_shard(text: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> Shard:
    """``"I/N"``, or ``"slurm"`` (the array task's place among the array's tasks);
    a PsweepError that says what is wrong."""
    text = text.strip()
    if text == "slurm":
        return _slurm_shard(environ)
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if match is None:
        raise PsweepError(
            f"--psweep-shard={text}: give I/N (this task's shard I of N, 0 <= I < N, "
            "e.g. 3/100) or 'slurm' (from SLURM_ARRAY_TASK_ID)"
        )
    index, count = int(match[1]), int(match[2])
    if not 0 <= index < count:
        raise PsweepError(f"--psweep-shard={text}: I must be at least 0 and less than N")
    return Shard(index, count)


def _slurm_shard(environ: Any) -> Shard:
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
    missing = [name for name in names if not environ.get(name, "").strip()]
    if missing:
        raise PsweepError(
            f"--psweep-shard=slurm: {', '.join(missing)} not set; run it as a task of "
            "a job array (sbatch --array=0-99 ...), or give --psweep-shard=I/N"
        )
    try:
        task, first, count = (int(environ[name]) for name in names)
    except ValueError:
        raise PsweepError(
            "--psweep-shard=slurm: "
            + ", ".join(f"{n}={environ[n]!r}" for n in names)
            + " are not whole numbers"
        ) from None
    index = task - first
    if not 0 <= index < count:
        raise PsweepError(
            f"--psweep-shard=slurm: task {task} of an array from {first} with {count} "
            "tasks: give the array a contiguous range (--array=0-99) or use "
            "--psweep-shard=I/N"
        )
    return Shard(index, count)


def check_run_id(text: str) -> str:
    """A run id the user chose: it names files, so letters, digits, ``_ . -`` only."""
    if not _RUN_ID.fullmatch(text):
        raise PsweepError(
            f"--psweep-run-id={text!r}: use letters, digits, '_', '.' and '-' only, "
            "not '.' first (at most 128): it names files in the calc dir"
        )
    return text


def slurm_run_id(environ: Any = os.environ) -> str | None:
    """The run id every task of one SLURM job array shares: a UUID made from the
    cluster's name and the array's job id; None outside an array."""
    job = environ.get("SLURM_ARRAY_JOB_ID", "").strip()
    if not job:
        return None
    cluster = environ.get("SLURM_CLUSTER_NAME", "").strip()
    return str(uuid.uuid5(_SLURM_NAMESPACE, f"{cluster}:{job}"))


def folder(calc_dir: CalcDir) -> Path:
    return calc_dir.path / SHARDS_DIR


def new_journal(calc_dir: CalcDir, run_id: str, shard: Shard) -> Path:
    """The journal of one shard session: a name no other task picks (a task may
    run again with the same run id)."""
    token = uuid.uuid4().hex[:12]
    return folder(calc_dir) / f"{run_id}.{shard.i}of{shard.n}.{token}{journal.SUFFIX}"


def ended(path: Path) -> Path:
    """Where the journal of a shard session goes when the session ends."""
    return path.with_suffix(ENDED)


def manifest(path: Path) -> Path:
    return path.with_suffix(MANIFEST)


def write_manifest(
    journal_path: Path,
    run_id: str,
    shard: Shard,
    counts: dict[str, int],
    roots: list[str],
    totals: dict[str, int] | None = None,
) -> None:
    """What merge needs to know of a shard: its psets per sweep and every shard's
    together (``totals``, to count what is missing), where its sweep modules are
    imported from (to read rows holding objects of their classes), and how often it
    beats. Written whole (rename), so a reader sees all or none."""
    data = {
        "run_id": run_id,
        "shard": shard.label,
        "psets": counts,
        "totals": totals or {},
        "import_roots": roots,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "written": time.time(),  # which array is newest: tallies rewrite the file later
        "heartbeat": heartbeat_seconds(),
    }
    text = json.dumps(data, indent=1, sort_keys=True).encode()
    write_atomic(manifest(journal_path), lambda fh: fh.write(text))


def check_count(path: Path, own: journal.Journal) -> None:
    """Refuse a task whose run id already has shards of another count (``1/3`` beside
    ``2/4``): their psets would overlap and go missing. Checked once this task's
    journal exists, so that of two tasks that start together one sees the other."""
    mine = FILE.fullmatch(path.stem)
    assert mine is not None
    for other in sorted(path.parent.iterdir()):
        found = FILE.fullmatch(other.name.split(".jnl")[0].removesuffix(other.suffix))
        if found and found["run"] == mine["run"] and found["count"] != mine["count"]:
            own.close(remove=True)
            raise PsweepError(
                f"--psweep-run-id={mine['run']}: this task is shard {mine['index']}/"
                f"{mine['count']}, but {other} is of shard {found['index']}/{found['count']}; "
                "the tasks of one array share N: give this array a run id of its own"
            )


def record_tally(path: Path, tally: dict[str, Any]) -> None:
    """Put what a shard file's rows say into its manifest, for ``psweep status`` once
    the file is merged (or the task that wrote it is gone); no manifest, no tally."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    data["tally"] = tally
    text = json.dumps(data, indent=1, sort_keys=True).encode()
    try:
        write_atomic(path, lambda fh: fh.write(text))
    except OSError:
        pass  # only counts: the rows are what matters


# -- a running task's journal, and the proof that it lives --------------------------


def heartbeat_seconds(environ: Any = os.environ) -> float:
    """How often a task touches its lock file (``PSWEEP_HEARTBEAT``, default 10 s)."""
    text = environ.get(HEARTBEAT_ENV, "").strip()
    try:
        seconds = float(text) if text else 10.0
    except ValueError:
        raise PsweepError(f"{HEARTBEAT_ENV}={text!r}: give seconds, e.g. 10") from None
    if not seconds > 0:
        raise PsweepError(f"{HEARTBEAT_ENV}={text!r}: give more than 0 seconds")
    return seconds


class ShardJournal(journal.Journal):
    """A shard task's journal: it holds ``<journal>.lock`` (taken before the journal
    exists) and touches it every heartbeat until it ends."""

    def __init__(self, path: Path) -> None:
        self.lock_file = Path(journal.lock_path(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        liveness.flock(self._lock_fd, exclusive=True)  # a new name: nobody else holds it
        super().__init__(path, lock=False, readable=True)
        assert self._fd is not None
        self._identity = _identity(os.fstat(self._fd))
        self.tally = liveness.Tally()
        self._decoder = journal.Decoder()
        self._counted: int | None = 0  # bytes of the journal in the tally
        self._stop = threading.Event()
        self._beat = threading.Thread(
            target=self._beating, args=(heartbeat_seconds(),), daemon=True
        )
        self._beat.start()

    def _beating(self, seconds: float) -> None:
        """Every heartbeat: count the records written since, and write the tally into
        the lock file (which changes its mtime: the heartbeat)."""
        while True:
            try:
                self._count()
                assert self._lock_fd is not None
                text = json.dumps(self.tally.data()).encode()
                os.pwrite(self._lock_fd, text, 0)
                os.ftruncate(self._lock_fd, len(text))
            except OSError:
                pass  # a filesystem that hiccups: the lock still holds, the next beat may
            if self._stop.wait(seconds):
                return

    def _count(self) -> None:
        """Feed the tally what was journaled since it last looked (read back from the
        file, so no row is kept in memory)."""
        if self._counted is None or self._fd is None:
            return
        while blob := os.pread(self._fd, 1 << 24, self._counted):
            self._counted += len(blob)
            try:
                for row in self._decoder.feed(blob):
                    self.tally.add(row)
            except journal.Undecodable:
                self._counted = None  # rows of classes not importable here: counts unknown
                self.tally.sweeps.clear()
                return
        in_flight = Counter(str(row.get("_sweep")) for row in self._decoder.started.values())
        self.tally.started = dict(in_flight)

    def taken(self) -> bool:
        """Did someone remove or replace the journal while this task ran?"""
        try:
            return _identity(os.stat(self.path)) != self._identity
        except FileNotFoundError:
            return True

    def end(self, keep: bool) -> Path | None:
        """The task's end: its journal becomes the ended shard's file (``keep``), or
        goes. A journal taken by a merge while the task ran is written again whole
        under a new name, and this is a PsweepError naming it: no row is lost."""
        rescued = None
        self._stop.set()
        self._beat.join()
        self._count()
        record_tally(manifest(self.path), self.tally.data())
        taken = self.taken()
        if taken and keep:
            rescued = self._rescue()
        target = None
        try:
            if not taken:
                if keep:
                    target = ended(self.path)
                    assert self._fd is not None
                    os.replace(self.path, target)
                else:
                    self.path.unlink(missing_ok=True)
        finally:
            self.close(remove=False)
        if taken:
            raise PsweepError(
                f"{self.path} was taken away while this task ran (a 'psweep merge --final' "
                "that found no sign of life, or a removal): "
                + (
                    f"all its rows are written again to {rescued}; "
                    if rescued
                    else "it held no rows; "
                )
                + f"run 'psweep merge {self.path.parent.parent}' and look for 'crashed' rows "
                "of psets this task ran"
            )
        return target

    def _rescue(self) -> Path:
        """Everything this task journaled, read back through its own descriptor, in a
        new ended shard file."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        blob = os.pread(self._fd, size, 0)
        token = uuid.uuid4().hex[:12]
        match = FILE.fullmatch(self.path.stem)
        stem = f"{match['run']}.{match['index']}of{match['count']}" if match else "rescued"
        target = self.path.parent / f"{stem}.{token}{ENDED}"
        write_atomic(target, lambda fh: fh.write(blob))
        return target

    def close(self, remove: bool) -> None:
        """Stop writing and beating, give up the lock and remove the lock file: a
        journal without one is a dead task's."""
        self._stop.set()
        if self._beat.is_alive() and self._beat is not threading.current_thread():
            self._beat.join()  # before the descriptors it reads go
        super().close(remove)
        if self._lock_fd is not None:
            self.lock_file.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


# -- reading ---------------------------------------------------------------------------


class ShardFile(NamedTuple):
    path: Path
    run: str
    shard: Shard
    ended: bool


def files(calc_dir: CalcDir) -> list[ShardFile]:
    where = folder(calc_dir)
    if not where.is_dir():
        return []
    found = []
    for path in sorted(where.iterdir()):
        if path.suffix not in (ENDED, journal.SUFFIX):
            continue
        match = FILE.fullmatch(path.stem)
        if match is None:
            continue
        shard = Shard(int(match["index"]), int(match["count"]))
        found.append(ShardFile(path, match["run"], shard, path.suffix == ENDED))
    return found


def manifests(calc_dir: CalcDir) -> list[dict[str, Any]]:
    where = folder(calc_dir)
    found = []
    for path in sorted(where.glob(f"*{MANIFEST}")) if where.is_dir() else ():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a manifest is written whole; one that is not is no manifest
        if isinstance(data, dict) and isinstance(data.get("psets"), dict):
            written = data.get("written")
            data["mtime"] = written if isinstance(written, float) else path.stat().st_mtime
            data["file"] = path
            found.append(data)
    return found


class Read:
    """The rows of one shard file, decoded as they are iterated (a file's rows as
    dicts would take many times its size): its finished rows, then, if ``crashed``,
    its started psets without a row. After that: ``started`` (those psets, if not
    ``crashed``: the task may still be running them), ``damaged`` and ``lost``."""

    def __init__(self, blob: bytes, crashed: bool) -> None:
        self.blob = blob
        self.crashed = crashed
        self.decoder = journal.Decoder()
        self.started: list[dict[str, Any]] = []
        self.rows = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.decoder.feed(self.blob, final=self.crashed):
            self.rows += 1
            yield row
        self.blob = b""
        started = self.decoder.crashed()
        if not self.crashed:  # a task still running: its started psets may finish
            self.started = started + self.decoder.unsure
            return
        # damage after a pset started: its finished row may be in the bytes lost, so
        # it is no crash (said, not made a row)
        self.started = self.decoder.unsure
        for row in started:
            self.rows += 1
            yield row

    @property
    def damaged(self) -> int:
        return self.decoder.damaged

    @property
    def lost(self) -> int:
        return self.decoder.lost


def read(path: Path, crashed: bool) -> Read | None:
    """One shard file's rows to iterate (``Read``); None if it is gone (merged by
    another merge, or renamed as its shard ended). Started psets are only final if
    ``crashed``: else the task may still be running them, and a record cut short may
    still be written."""
    try:
        return Read(path.read_bytes(), crashed)
    except FileNotFoundError:
        return None


def waiting_files(calc_dir: CalcDir) -> int:
    """How many shard files wait for ``psweep merge`` (without reading them)."""
    return len(files(calc_dir))


def waiting_rows(calc_dir: CalcDir) -> list[dict[str, Any]]:
    """The finished rows that shard files hold (merged or not): what a shard's
    ``--psweep-skip-dups`` and a dry run count as done besides the database."""
    rows: list[dict[str, Any]] = []
    with importable(manifests(calc_dir)):
        for shard_file in files(calc_dir):
            try:
                found = read(shard_file.path, crashed=False)
            except journal.Undecodable:
                continue  # its classes are not importable here: run it again
            if found is not None:
                rows.extend(found)
    return rows


class importable:  # noqa: N801 (a context manager, used as a function)
    """Rows may hold objects of classes from the sweep modules: put the folders
    they import from (the manifests say) on ``sys.path`` while shard files are read."""

    def __init__(self, manifests: list[dict[str, Any]]) -> None:
        self.roots = sorted(
            {str(r) for m in manifests for r in m.get("import_roots", ())} - set(sys.path)
        )

    def __enter__(self) -> None:
        sys.path[:0] = self.roots

    def __exit__(self, *exc: object) -> None:
        for root in self.roots:
            if root in sys.path:
                sys.path.remove(root)


def import_roots(calc_dir: CalcDir) -> list[str]:
    """The folders the shards' manifests say their sweep modules came from."""
    return sorted({str(r) for m in manifests(calc_dir) for r in m.get("import_roots", ())})
