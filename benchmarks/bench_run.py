"""``ps.run`` against psweep 0.16.0's ``run`` in one process, on the same work.

(1) N trivial psets into an empty calc dir (``func`` returns ``{"r": pset["a"] * 2}``,
``save=True``) for N = 1k, 10k, 100k; (2) appending 10 psets to a 50k-row database.
Each number is the best of REPEAT runs. psweep comes from PyPI:
``pip install -e ".[bench]"`` (it pins psweep==0.16.0).

    python benchmarks/bench_run.py [REPEAT]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psweep

import pytest_psweep as ps


def func(pset):
    return {"r": pset["a"] * 2}


def seconds(run, params, calc_dir: Path) -> float:
    start = time.perf_counter()
    run(func, params, calc_dir=str(calc_dir))
    return time.perf_counter() - start


def best_fresh(run, n: int, repeat: int, tmp: Path, tag: str) -> float:
    params = [{"a": a} for a in range(n)]
    return min(seconds(run, params, tmp / f"{tag}-{n}-{i}") for i in range(repeat))


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"psweep {psweep.__version__} vs pytest-psweep {ps.__version__}, best of {repeat}")
    print(
        f"{'work':<28} {'psweep s':>9} {'ours s':>9} {'psweep us/pset':>15} "
        f"{'ours us/pset':>13} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ours_by_n = {}
        for n in (1_000, 10_000, 100_000):
            theirs = best_fresh(psweep.run, n, repeat, tmp, "psweep")
            ours = best_fresh(ps.run, n, repeat, tmp, "ours")
            ours_by_n[n] = ours
            print(
                f"{f'{n} psets, empty calc dir':<28} {theirs:9.3f} {ours:9.3f} "
                f"{theirs / n * 1e6:15.1f} {ours / n * 1e6:13.1f} {ours / theirs:6.2f}"
            )
        print(f"linearity: ours 100k / 10k = {ours_by_n[100_000] / ours_by_n[10_000]:.1f}x")

        base = [{"a": a} for a in range(50_000)]
        extra = [{"a": a} for a in range(50_000, 50_010)]
        psweep.run(func, base, calc_dir=str(tmp / "psweep-append"))
        ps.run(func, base, calc_dir=str(tmp / "ours-append"))
        theirs = min(seconds(psweep.run, extra, tmp / "psweep-append") for _ in range(repeat))
        ours = min(seconds(ps.run, extra, tmp / "ours-append") for _ in range(repeat))
        print(
            f"{'10 psets onto 50k rows':<28} {theirs:9.3f} {ours:9.3f} "
            f"{theirs / 10 * 1e6:15.1f} {ours / 10 * 1e6:13.1f} {ours / theirs:6.2f}"
        )


if __name__ == "__main__":
    main()
