"""Job-array shards at scale (SPEC §7): what one task of a big array pays to collect,
and what ``psweep merge`` pays for many shard files.

    python benchmarks/bench_shards.py collect [PSETS] [SHARDS]   # default 1M, 100
    python benchmarks/bench_shards.py merge [SHARDS] [ROWS]       # default 100, 10k

``collect`` times ``pytest --psweep --collect-only -q`` of one sweep with PSETS psets,
once for shard 0/SHARDS and once for all psets (skip the latter with ALL=0: at 1M
it takes minutes and GiBs), each in its own process; peak memory is the process's
maximum resident set. ``merge`` makes SHARDS ended shard files of ROWS rows each
(rows as a real shard session journals them: one real session's row, repeated with
new ids and hashes) and times one ``psweep merge`` of all of them.
"""

from __future__ import annotations

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


def merge(shards: int, rows: int) -> None:
    from pytest_psweep import journal
    from pytest_psweep import shards as shard_files
    from pytest_psweep.calcdir import CalcDir
    from pytest_psweep.engine import new_id
    from pytest_psweep.params import pset_hash

    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder)
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
        made.unlink()
        start = time.perf_counter()
        for index in range(shards):
            shard = shard_files.Shard(index, shards)
            path = shard_files.new_journal(calc, "bench", shard)
            with open(path, "wb") as fh:
                for n in range(rows):
                    a = index * rows + n
                    row = {
                        **template,
                        "a": a,
                        "c": a * 0.5,
                        "_pset_id": new_id(),
                        "_pset_hash": pset_hash({"a": a}),
                        "_time_utc": template["_time_utc"] + a,
                        "_shard": shard.label,
                    }
                    fh.write(journal.encode_row(row))
            os.replace(path, shard_files.ended(path))
        made_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in shard_files.folder(calc).iterdir())
        print(f"{shards} shard files x {rows} rows: {size / 2**20:.0f} MiB ({made_s:.0f} s)")
        command = [sys.executable, "-m", "pytest_psweep.cli", "merge", str(calc.path)]
        took, peak = timed(command, study)
        db = (calc.path / "results.pk").stat().st_size
        print(
            f"psweep merge: {took:.1f} s, peak {peak:.0f} MiB; "
            f"results.pk {db / 2**20:.0f} MiB for {shards * rows + 1} rows"
        )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "collect"
    numbers = [int(float(x)) for x in sys.argv[2:]]
    if what == "collect":
        collect(*(numbers or [1_000_000, 100]))
    else:
        merge(*(numbers or [100, 10_000]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process: peak {peak:.0f} MiB)")
