"""`pytest --psweep` against plain pytest on the same number of items, in one run.

A sweep of N trivial psets versus a ``@pytest.mark.parametrize`` test with N cases,
serial and with ``-n 2``; each measured as the best of REPEAT fresh pytest processes.
Then the time and peak memory of collecting and running a 100k-pset sweep.

    python benchmarks/bench_plugin.py [N] [REPEAT]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """
import pytest_psweep as ps

@ps.sweep(ps.plist("a", range({n})))
def sweep_mul(pset):
    return {{"r": pset["a"] * 2}}
"""

PLAIN = """
import pytest

@pytest.mark.parametrize("a", range({n}))
def test_mul(a):
    assert a * 2 >= 0
"""

PEAK = (
    "import resource, sys, pytest; rc = pytest.main(sys.argv[1:]); "
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
)

COMMON = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:benchmark"]


def pytest_seconds(folder: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON, *args],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def best(folder: Path, args: list[str], repeat: int, clean: Path | None = None) -> float:
    times = []
    for _ in range(repeat):
        if clean is not None and clean.exists():
            for path in sorted(clean.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        times.append(pytest_seconds(folder, args))
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sweep_mul.py").write_text(SWEEP.format(n=n))
        (folder / "test_mul.py").write_text(PLAIN.format(n=n))
        print(f"{n} items, best of {repeat} pytest processes")
        print(f"{'mode':<10} {'plain s':>9} {'psweep s':>9} {'ratio':>7}")
        for label, extra in (("serial", ["-p", "no:xdist"]), ("-n 2", ["-n", "2"])):
            plain = best(folder, [*extra, "test_mul.py"], repeat)
            swept = best(
                folder, [*extra, "--psweep", "sweep_mul.py"], repeat, clean=folder / "calc"
            )
            print(f"{label:<10} {plain:9.2f} {swept:9.2f} {swept / plain:7.3f}")

        big = 100_000
        (folder / "sweep_mul.py").write_text(SWEEP.format(n=big))
        for label, args in (
            ("collect", ["--collect-only", "-p", "no:xdist"]),
            ("run", ["-p", "no:xdist"]),
        ):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", PEAK, *COMMON, "--psweep", *args, "sweep_mul.py"],
                cwd=folder,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
            peak = next(
                int(line.split()[1])
                for line in out.stdout.splitlines()
                if line.startswith("PEAK_KB")
            )
            print(f"{big} psets {label:<8} {seconds:7.1f} s  peak {peak / 1024:7.0f} MiB")


if __name__ == "__main__":
    main()
