"""``psweep status CALC_DIR [--watch]``: where the newest job array stands while it
runs. Read only and cheap on a shared filesystem: it reads the shards' manifests and
the small tallies running tasks write at every heartbeat (``shards.ShardJournal``),
never the database or a journal, and takes no lock.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import journal, liveness, shards
from .calcdir import CalcDir
from .merge import KINDS, manifest_shard, some
from .names import counted

SHOWN = ("passed", "failed", "crashed", "skipped", "running", "missing")


@dataclass
class Task:
    label: str  # "3/100"
    host: str
    state: str  # "running", "dead", "ended"
    age: float  # seconds since it last wrote (its heartbeat)


@dataclass
class Status:
    run_id: str | None = None
    count: int = 0  # shards of the newest array
    sweeps: dict[str, Counter[str]] = field(default_factory=dict)
    waiting: int = 0  # rows in shard files (not merged yet)
    tasks: list[Task] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)  # shards that never started
    unknown: list[str] = field(default_factory=list)  # tasks whose counts are not known
    left: float | None = None  # seconds, estimated

    def lines(self, calc_dir: Path) -> list[str]:
        if self.run_id is None:
            return [f"psweep status: no job-array shard has started in {calc_dir}"]
        states = Counter(task.state for task in self.tasks)
        lines = [
            f"psweep status: {calc_dir}, run {self.run_id}, {counted(self.count, 'shard')}: "
            + ", ".join(f"{states[s]} {s}" for s in ("running", "ended", "dead") if states[s])
            + (f", {len(self.absent)} not started" if self.absent else "")
        ]
        for sweep, counts in self.sweeps.items():
            parts = ", ".join(
                f"{counts[kind]} {kind}"
                for kind in SHOWN
                if counts[kind] or kind in ("passed", "missing")
            )
            lines.append(f"  {sweep}: {parts}")
        if self.waiting:
            lines.append(
                f"  {counted(self.waiting, 'row')} {'waits' if self.waiting == 1 else 'wait'} in "
                f"shard files: 'psweep merge {calc_dir}' "
                "puts them into the database"
            )
        if self.absent:
            lines.append(f"  shards not started: {some(self.absent)}")
        for task in self.tasks:
            if task.state != "ended":
                lines.append(
                    f"  shard {task.label} on {task.host}: {task.state}, wrote "
                    f"{_duration(task.age)} ago"
                )
        if self.unknown:
            lines.append(f"  counts not known yet for shards {', '.join(self.unknown)}")
        if self.left is not None:
            lines.append(f"  time left: about {_duration(self.left)} (from the runtimes so far)")
        return lines


def status(calc_dir: CalcDir, now: float | None = None) -> Status:
    """Where the newest array (by its manifests) stands; reads small files only."""
    now = time.time() if now is None else now
    report = Status()
    manifests = shards.manifests(calc_dir)
    if not manifests:
        return report
    newest = max(manifests, key=lambda m: m["mtime"])
    report.run_id = newest["run_id"]
    report.count = count = manifest_shard(newest).n
    by_shard: dict[int, dict[str, Any]] = {}
    for data in sorted(manifests, key=lambda m: m["mtime"]):  # the newest per shard wins
        if data.get("run_id") == report.run_id and manifest_shard(data).n == count:
            by_shard[manifest_shard(data).i] = data
    report.absent = [i for i in range(count) if i not in by_shard]
    waiting = {path.path.stem for path in shards.files(calc_dir)}
    totals: dict[str, int] = {}
    runtime, timed, running_tasks = 0.0, 0, 0
    for _, data in sorted(by_shard.items()):
        journal_path = Path(data["file"]).with_suffix(journal.SUFFIX)
        tally, task = _task(data, journal_path, now)
        report.tasks.append(task)
        for sweep, total in (data.get("totals") or data["psets"]).items():
            totals[str(sweep)] = int(total)
            report.sweeps.setdefault(str(sweep), Counter())
        if tally is None:
            report.unknown.append(task.label)
            continue
        for sweep, outcomes in tally["sweeps"].items():
            report.sweeps.setdefault(sweep, Counter()).update(outcomes)
        in_flight = {str(k): int(v) for k, v in (tally.get("started") or {}).items()}
        if task.state == "running":
            running_tasks += 1
        if task.state != "ended":  # psets a dead task was running crashed with it
            kind = "running" if task.state == "running" else "crashed"
            for sweep, psets in in_flight.items():
                report.sweeps.setdefault(sweep, Counter())[kind] += psets
        runtime += float(tally.get("runtime", 0.0))
        timed += int(tally.get("timed", 0))
        if Path(data["file"]).stem in waiting:
            report.waiting += int(tally.get("rows", 0))
    for sweep, counts in report.sweeps.items():
        seen = sum(counts[kind] for kind in KINDS if kind != "missing") + counts["running"]
        counts["missing"] = max(0, totals.get(sweep, seen) - seen)
    left = sum(counts["missing"] + counts["running"] for counts in report.sweeps.values())
    if timed and running_tasks:
        report.left = left * (runtime / timed) / running_tasks
    return report


def _task(data: dict[str, Any], journal_path: Path, now: float) -> tuple[Any, Task]:
    """A task's latest tally, and what is known of it: a running task's tally is in
    its lock file (whose mtime is its heartbeat), an ended one's in its manifest."""
    label = manifest_shard(data).label
    host = str(data.get("host", "?"))
    lock = Path(journal.lock_path(journal_path))
    try:
        beat = lock.stat().st_mtime
    except FileNotFoundError:
        return data.get("tally"), Task(label, host, "ended", now - float(data["mtime"]))
    heartbeat = float(data.get("heartbeat") or shards.heartbeat_seconds())
    age = max(0.0, now - beat)
    state = "running" if age < liveness.STALE_BEATS * heartbeat else "dead"
    return liveness.read_tally(lock) or data.get("tally"), Task(label, host, state, age)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def watch(calc_dir: CalcDir, every: float, times: int | None = None) -> None:
    """Print the status every ``every`` seconds until Ctrl-C (or ``times`` times): on a
    terminal in place, else one block after another."""
    shown = 0
    on_terminal = sys.stdout.isatty()
    try:
        while times is None or shown < times:
            lines = status(calc_dir).lines(calc_dir.path)
            if on_terminal:
                sys.stdout.write("\x1b[H\x1b[2J")
            else:
                lines.append(f"-- {time.strftime('%H:%M:%S')}")
            print("\n".join(lines), flush=True)
            shown += 1
            if times is None or shown < times:
                time.sleep(every)
    except KeyboardInterrupt:
        print(file=sys.stderr)
