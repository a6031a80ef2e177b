"""Is a shard task still running? (``psweep merge --final`` and ``psweep status`` ask.)

A task holds an ``flock`` on its journal's lock file and touches that file every
heartbeat (``shards.ShardJournal``). The lock answers at once where ``flock`` works
across nodes; where it may not (some shared filesystems), the heartbeat's age does.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from . import journal

STALE_BEATS = 3  # a heartbeat older than this many intervals is a dead task's


def flock(fd: int, exclusive: bool) -> bool:
    """Lock fd without waiting; False if another process holds a conflicting lock.
    Without fcntl (Windows) nothing is locked and the heartbeat is the only proof."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK: no locks on this filesystem, the heartbeat tells
        return True
    return True


class Life(NamedTuple):
    """Why a journal's task counts as alive or dead."""

    alive: bool
    why: str
    certain: bool = True  # False: only a heartbeat's age says so


def alive(
    path: Path, now: float, heartbeat: float, host: str | None = None, pid: int | None = None
) -> Life:
    """Does the task of the journal ``path`` still run? ``now``: the time on the
    filesystem (``filesystem_now``), ``heartbeat``: the task's interval; ``host`` and
    ``pid``: its manifest's, to ask this machine's kernel when it ran here."""
    lock = journal.lock_path(path)
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return Life(False, "no lock file")  # ended, or a task of an older version
    try:
        if not flock(fd, exclusive=False):
            return Life(True, "holds its lock")
        beat = os.fstat(fd).st_mtime
    finally:
        os.close(fd)  # and with it the shared lock just taken
    if host == socket.gethostname() and pid is not None and not _pid_runs(pid):
        return Life(False, f"process {pid} on this host has ended")
    age = now - beat
    if age < STALE_BEATS * heartbeat:
        why = f"beat {age:.0f} s ago (its lock is free: flock may not work here)"
        return Life(True, why, certain=False)
    return Life(False, f"last beat {age:.0f} s ago", certain=False)


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def filesystem_now(where: Path) -> float:
    """The time by the clock that stamps files in where (a file server's clock may
    differ from this node's): the mtime of a file made and removed now."""
    probe = where / f".now-{uuid.uuid4().hex[:12]}"
    try:
        probe.touch()
        try:
            return probe.stat().st_mtime
        finally:
            probe.unlink(missing_ok=True)
    except OSError:
        return time.time()


class Tally:
    """What a shard task's rows say, counted as they are journaled: outcomes per
    sweep, psets started and not finished, runtimes. A task writes it into its lock
    file at every heartbeat and into its manifest at its end; ``psweep status`` reads
    only these small files."""

    def __init__(self) -> None:
        self.sweeps: dict[str, dict[str, int]] = {}
        self.started: dict[str, int] = {}  # per sweep, psets running (a dead task's: crashed)
        self.runtime = 0.0  # seconds of the finished psets that say so
        self.timed = 0
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        counts = self.sweeps.setdefault(str(row.get("_sweep")), {})
        outcome = str(row.get("_outcome"))
        counts[outcome] = counts.get(outcome, 0) + 1
        runtime = row.get("_pset_runtime")
        if isinstance(runtime, (int, float)) and runtime == runtime:
            self.runtime += float(runtime)
            self.timed += 1
        self.rows += 1

    def data(self) -> dict[str, Any]:
        return {
            "sweeps": self.sweeps,
            "started": self.started,
            "runtime": self.runtime,
            "timed": self.timed,
            "rows": self.rows,
        }


def read_tally(path: Path) -> dict[str, Any] | None:
    """The tally a task last wrote into a file (its lock file): None if there is none
    yet, or it is being written just now."""
    try:
        text = path.read_bytes()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("sweeps"), dict) else None
