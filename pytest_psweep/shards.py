"""Job-array shards (SPEC §7): which psets a task runs, where it leaves its rows, and
``psweep merge``, which brings them into the database.

A shard session (``--psweep-shard=I/N``) runs the psets whose ``int(_pset_hash, 16)
% N == I``, chosen while collecting, before items exist. It never touches the
database: a shared filesystem may have no reliable lock, and a write of the whole
database per task costs O(database) each time. It journals its rows to a file of
its own under ``<calc_dir>/shards/`` (no lock needed: nobody else writes it):

* ``<run>.<I>of<N>.<token>.jnl`` while the task runs, or after it was killed;
* ``<run>.<I>of<N>.<token>.shard`` once it ended (the same bytes, renamed);
* ``<run>.<I>of<N>.<token>.json``, its manifest: how many psets each sweep has
  in this shard, and where its modules are imported from.

``merge`` reads them all in one pass and appends, under the database's lock, the
rows the database does not have (by ``_pset_id``), so it may run again, while
shards still run, and beside another merge. A file of an ended shard is removed
once its rows are in; a journal of a task that may still run is left in place.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import journal
from .calcdir import CalcDir, Database
from .database import Columns, latest_rows, write_atomic
from .errors import PsweepError
from .names import DATABASE

SHARDS_DIR = "shards"
ENDED = ".shard"  # the journal of a shard session that ended
MANIFEST = ".json"
_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")  # no ".", "..", hidden
_FILE = re.compile(r"(?P<run>.+)\.(?P<index>\d+)of(?P<count>\d+)\.(?P<token>[0-9a-f]+)$")
# the namespace of run ids made from a SLURM array job's id (uuid5)
_SLURM_NAMESPACE = uuid.UUID("5b0e6b52-4c4f-4b8e-9a53-2f1e4a7d0c11")


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
    journal_path: Path, run_id: str, shard: Shard, counts: dict[str, int], roots: list[str]
) -> None:
    """What merge needs to know of a shard: its psets per sweep (to count what is
    missing) and where its sweep modules are imported from (to read rows holding
    objects of their classes). Written whole (rename), so a reader sees all or none."""
    data = {
        "run_id": run_id,
        "shard": shard.label,
        "psets": counts,
        "import_roots": roots,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    text = json.dumps(data, indent=1, sort_keys=True).encode()
    write_atomic(manifest(journal_path), lambda fh: fh.write(text))


# -- reading and merging -------------------------------------------------------------


class _ShardFile(NamedTuple):
    path: Path
    run: str
    shard: Shard
    ended: bool


def _files(calc_dir: CalcDir) -> list[_ShardFile]:
    where = folder(calc_dir)
    if not where.is_dir():
        return []
    found = []
    for path in sorted(where.iterdir()):
        if path.suffix not in (ENDED, journal.SUFFIX):
            continue
        match = _FILE.fullmatch(path.stem)
        if match is None:
            continue
        shard = Shard(int(match["index"]), int(match["count"]))
        found.append(_ShardFile(path, match["run"], shard, path.suffix == ENDED))
    return found


def _manifests(calc_dir: CalcDir) -> list[dict[str, Any]]:
    where = folder(calc_dir)
    found = []
    for path in sorted(where.glob(f"*{MANIFEST}")) if where.is_dir() else ():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a manifest is written whole; one that is not is no manifest
        if isinstance(data, dict) and isinstance(data.get("psets"), dict):
            data["mtime"] = path.stat().st_mtime
            found.append(data)
    return found


def _read(path: Path, crashed: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(finished rows, started psets without a row) of one shard file; None if it
    is gone (merged by another merge, or renamed as its shard ended). Started psets
    become rows only if ``crashed``: else the task may still be running them."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    decoder = journal.Decoder()
    rows = list(decoder.feed(blob, final=crashed))
    return rows, decoder.crashed()


def waiting_files(calc_dir: CalcDir) -> int:
    """How many shard files wait for ``psweep merge`` (without reading them)."""
    return len(_files(calc_dir))


def waiting_rows(calc_dir: CalcDir) -> list[dict[str, Any]]:
    """The finished rows that shard files hold (merged or not): what a shard's
    ``--psweep-skip-dups`` and a dry run count as done besides the database."""
    rows: list[dict[str, Any]] = []
    with _importable(_manifests(calc_dir)):
        for shard_file in _files(calc_dir):
            try:
                read = _read(shard_file.path, crashed=False)
            except journal.Undecodable:
                continue  # its classes are not importable here: run it again
            if read is not None:
                rows.extend(read[0])
    return rows


@dataclass
class MergeReport:
    """What ``merge`` did, and where each sweep of the newest array stands."""

    merged: int = 0  # rows appended to the database
    files: int = 0  # shard files read
    removed: int = 0  # files of ended shards whose rows are all in
    running: int = 0  # psets started in journals of tasks that may still run
    run_id: str | None = None  # the newest array's run id (by its manifests)
    shards: str = ""  # its shards that have not started, e.g. "3, 7 of 100"
    # sweep -> outcome ("passed", "failed", "crashed", "skipped", "missing") -> psets
    sweeps: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self, calc_dir: Path) -> list[str]:
        lines = [
            f"psweep merge: {self.merged} new rows from {self.files} shard files into "
            f"{calc_dir / DATABASE}"
            + (f"; {self.removed} files of ended shards removed" if self.removed else "")
        ]
        if self.run_id is not None:
            lines.append(f"run {self.run_id}:")
            for sweep, counts in self.sweeps.items():
                parts = ", ".join(
                    f"{counts[kind]} {kind}"
                    for kind in ("passed", "failed", "crashed", "skipped", "missing")
                    if counts[kind] or kind in ("passed", "missing")
                )
                lines.append(f"  {sweep}: {parts}")
            if self.shards:
                lines.append(f"  shards not started: {self.shards}")
        if self.running:
            lines.append(
                f"{self.running} psets started in journals of tasks that may still run "
                "(or died): they become 'crashed' rows with 'psweep merge --final' once "
                "every task has ended"
            )
        return lines + [f"psweep merge: {problem}" for problem in self.problems]


def merge(calc_dir: CalcDir, final: bool = False, lock_timeout: float | None = None) -> MergeReport:
    """Append the rows of every shard file to the database in one write.

    ``final``: every task has ended (a merge job that runs ``afterany``), so a pset
    that started and has no row died with its task: it gets a ``crashed`` row, and
    the journals of killed tasks are removed once merged.
    """
    report = MergeReport()
    rows = Columns()  # column by column: a million rows as dicts would take GiBs
    done: list[Path] = []  # files whose every row is in ``rows``
    manifests = _manifests(calc_dir)
    with _importable(manifests):
        for shard_file in _files(calc_dir):
            try:
                read = _read(shard_file.path, crashed=shard_file.ended or final)
            except journal.Undecodable as exc:
                report.problems.append(
                    f"{shard_file.path} holds objects whose classes cannot be imported "
                    f"here ({exc}): run 'psweep merge' where the sweep modules import"
                )
                continue
            if read is None:
                continue
            report.files += 1
            finished, started = read
            for row in finished:
                rows.add(row)
            if shard_file.ended or final:
                for row in started:
                    rows.add(row)
                done.append(shard_file.path)
            else:
                report.running += len(started)
        database = Database(calc_dir, lock_timeout=lock_timeout)
        if rows.count:
            # in the order the psets ran, whichever file holds them: a resubmitted
            # task's rows come after those they supersede, and "latest" is the newest
            frame = rows.frame().sort_values("_time_utc", kind="stable")
            del rows
            _, new = database.append(frame)
            report.merged = len(new)
        for path in done:  # all its rows are in the database now
            path.unlink(missing_ok=True)
            report.removed += 1
        _status(report, manifests, database.read())
    return report


def _status(report: MergeReport, manifests: list[dict[str, Any]], database: Any) -> None:
    """Per sweep of the newest array: its psets' latest outcomes and how many of the
    psets its shards collected have no row."""
    if not manifests:
        return
    newest = max(manifests, key=lambda m: m["mtime"])
    run_id = newest["run_id"]
    mine = [m for m in manifests if m.get("run_id") == run_id]
    count = _shard(newest).n
    by_shard: dict[int, dict[str, Any]] = {}  # of the newest array's count of shards
    for data in sorted(mine, key=lambda m: m["mtime"]):  # the newest per shard wins
        shard = _shard(data)
        if shard.n == count:
            by_shard[shard.i] = data
    expected: Counter[str] = Counter()
    for data in by_shard.values():
        expected.update({str(k): int(v) for k, v in data["psets"].items()})
    report.run_id = run_id
    absent = [str(i) for i in range(count) if i not in by_shard]
    if absent:
        report.shards = f"{', '.join(absent[:20])}{' ...' if len(absent) > 20 else ''} of {count}"
    latest = None
    if database is not None and len(database) and "_sweep" in database:
        latest = latest_rows(database[database["_sweep"].isin(list(expected))])
        # only the psets of the shards that ran: their rows, whichever run made them
        owner = [shard_of(digest, count) in by_shard for digest in latest["_pset_hash"]]
        latest = latest[owner]
    for sweep, total in expected.items():
        counts: Counter[str] = Counter()
        if latest is not None:
            counts.update(latest.loc[latest["_sweep"] == sweep, "_outcome"].astype(str))
        counts["missing"] = max(0, total - sum(counts.values()))
        report.sweeps[sweep] = counts


def _shard(manifest: dict[str, Any]) -> Shard:
    """The shard a manifest is of (its "I/N"); 0/1 if it does not say rightly."""
    try:
        return parse_shard(str(manifest.get("shard")), {})
    except PsweepError:
        return Shard(0, 1)


def import_roots(calc_dir: CalcDir) -> list[str]:
    """The folders the shards' manifests say their sweep modules came from."""
    return sorted({str(r) for m in _manifests(calc_dir) for r in m.get("import_roots", ())})


class _importable:
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
