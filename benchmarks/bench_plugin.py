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

# the same items as the sweep makes: dict params and the marks psweep and pset(a=...)
MARKED = """
import pytest

@pytest.mark.psweep
@pytest.mark.parametrize("pset", [
    pytest.param({{"a": a}}, id=f"a={{a}}", marks=pytest.mark.pset(a=a)) for a in range({n})
])
def test_marked(pset):
    assert pset["a"] * 2 >= 0
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
        (folder / "test_marked.py").write_text(MARKED.format(n=n))
        print(f"{n} items, best of {repeat} pytest processes; 'marked' is a parametrize test")
        print("with the sweep's marks and dict params: psweep / marked is the plugin's own cost")
        print(
            f"{'mode':<8} {'plain s':>8} {'marked s':>9} {'psweep s':>9} {'psweep/plain':>13} "
            f"{'psweep/marked':>14}"
        )
        for label, extra in (("serial", ["-p", "no:xdist"]), ("-n 2", ["-n", "2"])):
            plain = best(folder, [*extra, "test_mul.py"], repeat)
            marked = best(folder, [*extra, "test_marked.py"], repeat)
            swept = best(
                folder, [*extra, "--psweep", "sweep_mul.py"], repeat, clean=folder / "calc"
            )
            print(
                f"{label:<8} {plain:8.2f} {marked:9.2f} {swept:9.2f} {swept / plain:13.3f} "
                f"{swept / marked:14.3f}"
            )

        big = 100_000
        (folder / "sweep_mul.py").write_text(SWEEP.format(n=big))
        (folder / "test_mul.py").write_text(PLAIN.format(n=big))
        print(f"{big} items, one pytest process each, -p no:xdist")
        for label, extra in (("collect", ["--collect-only"]), ("run", [])):
            plain = peak_run(folder, [*extra, "test_mul.py"])
            swept = peak_run(folder, [*extra, "--psweep", "sweep_mul.py"])
            print(
                f"{label:<8} plain {plain[0]:6.1f} s {plain[1]:6.0f} MiB   "
                f"psweep {swept[0]:6.1f} s {swept[1]:6.0f} MiB   "
                f"ratio {swept[0] / plain[0]:.2f} s, {swept[1] / plain[1]:.2f} memory"
            )


def peak_run(folder: Path, args: list[str]) -> tuple[float, float]:
    """Seconds and peak memory (MiB) of one pytest process."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PEAK, *COMMON, "-p", "no:xdist", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak = next(
        int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("PEAK_KB")
    )
    return seconds, peak / 1024


if __name__ == "__main__":
    main()
