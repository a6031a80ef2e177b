"""``psweep merge``: the rows that job-array shards left (``shards.py``) into the
database, and where each sweep of the newest array stands.

It reads every shard file in one pass and appends, under the database's lock, the
rows the database does not have (by ``_pset_id``), so it may run again, while shards
still run, and beside another merge. The file of an ended shard is removed once its
rows are in; a damaged one goes to ``shards/quarantine/``. A journal is removed only
once its task is known dead (``--final`` and ``liveness.alive``): a running task's
journal is left alone, whatever the merge was told.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import journal, liveness, shards
from .calcdir import CalcDir, Database
from .database import latest_rows
from .errors import PsweepError
from .gather import Gather
from .names import DATABASE, KEY_COLUMNS, counted, unsure_psets
from .shards import Shard, shard_of

QUARANTINE = "quarantine"
KINDS = ("passed", "failed", "crashed", "skipped", "missing")


@dataclass
class MergeReport:
    """What ``merge`` did, and where each sweep of the newest array stands."""

    merged: int = 0  # rows appended to the database
    files: int = 0  # shard files read
    removed: int = 0  # files of ended shards whose rows are all in
    running: int = 0  # psets started in journals of tasks that may still run
    live: list[str] = field(default_factory=list)  # journals --final left alone, why
    run_id: str | None = None  # the newest array's run id (by its manifests)
    shards: str = ""  # its shards that have not started, e.g. "3, 7 of 100"
    # sweep -> outcome ("passed", "failed", "crashed", "skipped", "missing") -> psets
    sweeps: dict[str, Counter[str]] = field(default_factory=dict)
    owing: dict[str, str] = field(default_factory=dict)  # sweep -> shards owing psets
    damaged: list[str] = field(default_factory=list)  # shard files quarantined, counts
    problems: list[str] = field(default_factory=list)

    def lines(self, calc_dir: Path) -> list[str]:
        lines = [
            f"psweep merge: {counted(self.merged, 'new row')} from "
            f"{counted(self.files, 'shard file')} into "
            f"{calc_dir / DATABASE}"
            + (f"; {counted(self.removed, 'file')} of ended shards removed" if self.removed else "")
        ]
        if self.run_id is not None:
            lines.append(f"run {self.run_id}:")
            for sweep, counts in self.sweeps.items():
                parts = ", ".join(
                    f"{counts[kind]} {kind}"
                    for kind in KINDS
                    if counts[kind] or kind in ("passed", "missing")
                )
                owing = f" (owed by shards {self.owing[sweep]})" if sweep in self.owing else ""
                lines.append(f"  {sweep}: {parts}{owing}")
            if self.shards:
                lines.append(f"  shards not started: {self.shards}")
        if self.running:
            lines.append(
                f"{counted(self.running, 'pset')} started in journals of tasks that may still run "
                "(or died): they become 'crashed' rows with 'psweep merge --final' once "
                "every task has ended"
            )
        if self.live:
            lines.append(
                f"--final left {counted(len(self.live), 'journal')} of tasks that still run alone "
                "(their finished rows are in); run 'psweep merge --final' again once they "
                "have ended:"
            )
            lines += [f"  {live}" for live in self.live]
        lines += [f"psweep merge: {damaged}" for damaged in self.damaged]
        return lines + [f"psweep merge: {problem}" for problem in self.problems]


def merge(calc_dir: CalcDir, final: bool = False, lock_timeout: float | None = None) -> MergeReport:
    """Append the rows of every shard file to the database in one write.

    ``final``: every task should have ended (a merge job that runs ``afterany``), so
    a pset that started and has no row died with its task: it gets a ``crashed`` row,
    and the journals of dead tasks are removed once merged. A journal whose task
    still shows signs of life is treated as without ``final``, and said.
    """
    report = MergeReport()
    rows = Gather()  # column by column: a million rows as dicts would take GiBs
    done: list[Path] = []  # files whose every row is in ``rows``
    damaged: list[tuple[Path, str]] = []  # and that lost records: quarantined after
    tallies: list[tuple[Path, Any]] = []  # ended tasks' tallies, for their manifests
    manifests = shards.manifests(calc_dir)
    _check_counts(report, shards.files(calc_dir), manifests)
    dead = _dead_journals(shards.folder(calc_dir), calc_dir, manifests, report) if final else set()
    with shards.importable(manifests):
        for shard_file in shards.files(calc_dir):
            ended = shard_file.ended or shard_file.path in dead
            read = shards.read(shard_file.path, crashed=ended)
            if read is None:
                continue
            tally = liveness.Tally()
            try:
                rows.add(_counted(read, tally))
            except journal.Undecodable as exc:
                report.problems.append(
                    f"{shard_file.path} holds objects whose classes cannot be imported "
                    f"here ({exc}): run 'psweep merge' where the sweep modules import"
                )
                continue
            report.files += 1
            if not ended:
                report.running += len(read.started)
                continue
            tallies.append((shards.manifest(shard_file.path), tally.data()))
            if read.damaged:
                counts = (
                    f"{counted(read.rows, 'row')} kept, {counted(read.lost, 'byte')} lost"
                    + unsure_psets(len(read.started), "bytes")
                )
                damaged.append((shard_file.path, counts))
            else:
                done.append(shard_file.path)
            del read
        database = Database(calc_dir, lock_timeout=lock_timeout)
        whole = None
        if rows.count:
            # in the order the psets ran, whichever file holds them: a resubmitted
            # task's rows come after those they supersede, and "latest" is the newest
            frame = rows.frame()
            del rows
            with warnings.catch_warnings():  # the frame is made column by column
                warnings.filterwarnings("ignore", "DataFrame is highly fragmented")
                whole, new = database.append(frame)
            report.merged = len(new)
            # the status needs five columns: the others (ids, results) go now
            whole = _status_columns(whole)
            del frame, new
        # after the database (which takes the lock first: a calc dir that cannot be
        # written is said once, as for recover and migrate)
        for manifest_path, data in tallies:
            shards.record_tally(manifest_path, data)
        for path in done:  # all its rows are in the database now
            path.unlink(missing_ok=True)
            Path(journal.lock_path(path)).unlink(missing_ok=True)
            report.removed += 1
        for path, counts in damaged:
            target = _quarantine(path)
            report.damaged.append(f"{path} was damaged: {counts}; moved to {target}")
        if not report.problems:
            _status(report, manifests, whole if whole is not None else database.read())
    return report


def _counted(rows: Iterable[dict[str, Any]], tally: liveness.Tally) -> Iterator[dict[str, Any]]:
    for row in rows:
        tally.add(row)
        yield row


def _quarantine(path: Path) -> Path:
    """Move a shard file that lost records out of every later merge's way (its rows
    are in the database; what it lost may still be read from it by hand)."""
    folder = path.parent / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    os.replace(path, target)
    Path(journal.lock_path(path)).unlink(missing_ok=True)
    return target


def _check_counts(
    report: MergeReport, found: list[shards.ShardFile], manifests: list[dict[str, Any]]
) -> None:
    """One run id whose shards are of different counts (``1/3`` and ``2/4``): their
    psets overlap or go missing, and no count of what is missing is true."""
    seen: dict[str, dict[int, str]] = {}
    for shard_file in found:
        seen.setdefault(shard_file.run, {}).setdefault(shard_file.shard.n, str(shard_file.path))
    for data in manifests:
        shard = manifest_shard(data)
        seen.setdefault(str(data.get("run_id")), {}).setdefault(shard.n, str(data["file"]))
    for run, counts in seen.items():
        if len(counts) > 1:
            named = " and ".join(f"N={n} ({where})" for n, where in sorted(counts.items()))
            report.problems.append(
                f"run id {run} has shards of different counts: {named}; one array's "
                "tasks share N: its rows are merged, but nothing is counted missing "
                "until one of them is moved away or run again under another run id"
            )


def _dead_journals(
    folder: Path, calc_dir: CalcDir, manifests: list[dict[str, Any]], report: MergeReport
) -> set[Path]:
    """The journals whose task has ended: no lock file, a lock nobody holds and a
    heartbeat older than ``STALE_BEATS``, or a process gone from this host. A free
    lock with a fresh heartbeat may be a task that just died, or a filesystem where
    ``flock`` does not reach this node: wait until the heartbeat is stale or beats."""
    by_stem = {Path(data["file"]).stem: data for data in manifests}
    pending: dict[Path, tuple[float, Any, Any]] = {}  # journal -> heartbeat, host, pid
    for shard_file in shards.files(calc_dir):
        if not shard_file.ended:
            data = by_stem.get(shard_file.path.stem, {})
            beat = float(data.get("heartbeat") or shards.heartbeat_seconds())
            pending[shard_file.path] = (beat, data.get("host"), data.get("pid"))
    dead: set[Path] = set()
    longest = max((beat for beat, _, _ in pending.values()), default=0.0)
    deadline = time.monotonic() + (liveness.STALE_BEATS + 1) * longest
    while pending:  # all at once: a hundred uncertain journals wait 4 beats, not 400
        now = liveness.filesystem_now(folder)
        last = time.monotonic() > deadline
        for path, (beat, host, pid) in list(pending.items()):
            life = liveness.alive(path, now, beat, host, pid)
            if not life.alive:
                dead.add(path)
            elif life.certain or last:
                report.live.append(f"{path.name}: {life.why}")
            else:
                continue
            del pending[path]
        if pending:
            time.sleep(min(longest, 1.0))
    return dead


def _status(report: MergeReport, manifests: list[dict[str, Any]], database: Any) -> None:
    """Per sweep of the newest array: its psets' latest outcomes, and how many of all
    its psets (the total every task recorded) have no row, with the shards that owe
    them."""
    if not manifests:
        return
    newest = max(manifests, key=lambda m: m["mtime"])
    run_id = newest["run_id"]
    count = manifest_shard(newest).n
    by_shard: dict[int, dict[str, Any]] = {}  # of the newest array's count of shards
    for data in sorted(manifests, key=lambda m: m["mtime"]):  # the newest per shard wins
        shard = manifest_shard(data)
        if data.get("run_id") == run_id and shard.n == count:
            by_shard[shard.i] = data
    expected: Counter[str] = Counter()  # per sweep, the psets of the shards that ran
    totals: dict[str, int] = {}  # per sweep, every shard's psets
    for data in by_shard.values():
        expected.update({str(k): int(v) for k, v in data["psets"].items()})
        totals.update({str(k): int(v) for k, v in (data.get("totals") or {}).items()})
    report.run_id = run_id
    absent = [i for i in range(count) if i not in by_shard]
    if absent:
        report.shards = some(absent) + f" of {count}"
    sweeps = sorted(set(expected) | set(totals), key=list(expected).index)
    latest = None
    if database is not None and len(database) and "_sweep" in database:
        # only the columns it needs: a copy of the whole database would double the peak
        database = _status_columns(database)
        latest = latest_rows(database[database["_sweep"].isin(sweeps).to_numpy()])
    for sweep in sweeps:
        counts: Counter[str] = Counter()
        owing: list[int] = list(absent)
        seen = 0
        if latest is not None and len(latest):
            mine = latest[(latest["_sweep"] == sweep).to_numpy()]
            owners = Counter(shard_of(digest, count) for digest in mine["_pset_hash"])
            counts.update(mine["_outcome"].astype(str))
            seen = len(mine)
            owing += [
                i
                for i, data in sorted(by_shard.items())
                if owners[i] < int(data["psets"].get(sweep, 0))
            ]
        else:
            owing += [i for i, data in sorted(by_shard.items()) if data["psets"].get(sweep)]
        total = totals.get(sweep, expected[sweep])
        counts["missing"] = max(0, total - seen)
        report.sweeps[sweep] = counts
        if counts["missing"]:
            report.owing[sweep] = some(sorted(set(owing))) + f" of {count}"


def _status_columns(database: Any) -> Any:
    """The columns of the database ``_status`` reads."""
    needed = [*KEY_COLUMNS, "_pset_seq", "_time_utc", "_outcome"]
    return database[[c for c in needed if c in database]]


def some(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:20])) + (" ..." if len(numbers) > 20 else "")


def manifest_shard(manifest: dict[str, Any]) -> Shard:
    """The shard a manifest is of (its "I/N"); 0/1 if it does not say rightly."""
    try:
        return shards.parse_shard(str(manifest.get("shard")), {})
    except PsweepError:
        return Shard(0, 1)
