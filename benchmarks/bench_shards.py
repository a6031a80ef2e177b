"""Job-array shards at scale (SPEC §7): what one task of a big array pays to collect,
and what ``psweep merge`` pays for many shard files.

    python benchmarks/bench_shards.py collect [PSETS] [SHARDS]   # default 1M, 100
    python benchmarks/bench_shards.py merge [SHARDS] [ROWS]       # default 100, 10k
    python benchmarks/bench_shards.py status [SHARDS] [ROWS]      # default 100, 10k

``collect`` times ``pytest --psweep --collect-only -q`` of one sweep with PSETS psets,
once for shard 0/SHARDS and once for all psets (skip the latter with ALL=0: at 1M
it takes minutes and GiBs), each in its own process; peak memory is the process's
maximum resident set. ``merge`` makes SHARDS ended shard files of ROWS rows each
(rows as a real shard session journals them: one real session's row, repeated with
new ids and hashes) and times one ``psweep merge`` of all of them; its peak is
compared with the size of the ``results.pk`` it writes. ``status`` makes the same
files with manifests, half of them as journals of running tasks (a lock file with
a fresh tally), and times ``psweep status`` (the whole process) on them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SWEEP = """
import pytest_psweep as ps

params = ps.pgrid(ps.plist("a", range({side})), ps.plist("b", [x / 7 for x in range({side})]))


@ps.sweep(params[:{psets}])
def sweep_big(pset):
    return {{"c": pset["a"] * pset["b"]}}
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of a command in a process of its own."""
    runner = textwrap.dedent(
        """
        import resource, subprocess, sys, time
        start = time.perf_counter()
        done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
        took = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(took, peak, done.returncode)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", runner, *command], cwd=cwd, capture_output=True, text=True
    )
    took, peak, code = out.stdout.split()
    assert code in ("0", "5"), out.stderr
    return float(took), float(peak)


def collect(psets: int, shards: int) -> None:
    side = int(psets**0.5) + 1
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder)
        (study / "sweep_big.py").write_text(SWEEP.format(side=side, psets=psets))
        (study / "pytest.ini").write_text("[pytest]\n")
        base = [sys.executable, "-m", "pytest", "--psweep", "--co", "-q", "-p", "no:randomly"]
        took, peak = timed([*base, f"--psweep-shard=0/{shards}"], study)
        print(f"{psets} psets, shard 0/{shards}: collect {took:.1f} s, peak {peak:.0f} MiB")
        if os.environ.get("ALL", "1") != "0":
            took_all, peak_all = timed(base, study)
            print(f"{psets} psets, all: collect {took_all:.1f} s, peak {peak_all:.0f} MiB")
            print(f"shard / all: time {took / took_all:.3f}, memory {peak / peak_all:.3f}")


def make_shards(study: Path, shards: int, rows: int, running: int = 0) -> Path:
    """SHARDS shard files of ROWS rows each in study/calc/shards (the first
    ``running`` of them as journals of running tasks); the calc dir."""
    from pytest_psweep import journal, liveness
    from pytest_psweep import shards as shard_files
    from pytest_psweep.calcdir import CalcDir
    from pytest_psweep.engine import new_id
    from pytest_psweep.params import pset_hash

    (study / "sweep_one.py").write_text(
        "import pytest_psweep as ps\n\n"
        "@ps.sweep(ps.plist('a', [1]))\n"
        "def sweep_one(pset):\n    return {'c': pset['a'] * 0.5}\n"
    )
    subprocess.run(
        [sys.executable, "-m", "pytest", "--psweep", "--psweep-shard=0/1", "-q"],
        cwd=study,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    calc = CalcDir(study / "calc")
    (made,) = [p for p in shard_files.folder(calc).glob("*.shard")]
    (template,) = journal.read_journal(made)[0]
    for path in shard_files.folder(calc).iterdir():
        path.unlink()
    sweep = template["_sweep"]
    for index in range(shards):
        shard = shard_files.Shard(index, shards)
        path = shard_files.new_journal(calc, "bench", shard)
        tally = liveness.Tally()
        with open(path, "wb") as fh:
            for n in range(rows):
                a = index * rows + n
                row = {
                    **template,
                    "a": a,
                    "c": a * 0.5,
                    "_pset_id": new_id(),
                    "_pset_hash": pset_hash({"a": a}),
                    # the tasks of an array run side by side: their times interleave
                    "_time_utc": template["_time_utc"] + n * shards + index,
                    "_shard": shard.label,
                }
                fh.write(journal.encode_row(row))
                tally.add(row)
        counts, totals = {sweep: rows}, {sweep: rows * shards}
        shard_files.write_manifest(path, "bench", shard, counts, [], totals)
        if index < running:  # a task that runs: its lock file holds its tally
            Path(journal.lock_path(path)).write_text(json.dumps(tally.data()))
        else:
            shard_files.record_tally(shard_files.manifest(path), tally.data())
            os.replace(path, shard_files.ended(path))
    return calc.path


def merge(shards: int, rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder)
        start = time.perf_counter()
        calc = make_shards(study, shards, rows)
        made_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (calc / "shards").glob("*.shard"))
        print(f"{shards} shard files x {rows} rows: {size / 2**20:.0f} MiB ({made_s:.0f} s)")
        command = [sys.executable, "-m", "pytest_psweep.cli", "merge", str(calc)]
        took, peak = timed(command, study)
        db = (calc / "results.pk").stat().st_size / 2**20
        print(
            f"psweep merge: {took:.1f} s, peak {peak:.0f} MiB; "
            f"results.pk {db:.0f} MiB for {shards * rows} rows; peak / results.pk "
            f"{peak / db:.2f}"
        )


def status(shards: int, rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder)
        calc = make_shards(study, shards, rows, running=shards // 2)
        size = sum(p.stat().st_size for p in (calc / "shards").iterdir())
        print(f"{shards} shard files x {rows} rows: {size / 2**20:.0f} MiB")
        command = [sys.executable, "-m", "pytest_psweep.cli", "status", str(calc)]
        took, peak = timed(command, study)
        shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        print(shown.splitlines()[1].strip())
        print(f"psweep status: {took:.2f} s (the whole process), peak {peak:.0f} MiB")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "collect"
    numbers = [int(float(x)) for x in sys.argv[2:]]
    if what == "collect":
        collect(*(numbers or [1_000_000, 100]))
    elif what == "status":
        status(*(numbers or [100, 10_000]))
    else:
        merge(*(numbers or [100, 10_000]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process: peak {peak:.0f} MiB)")
