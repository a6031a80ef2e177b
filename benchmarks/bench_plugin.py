"""`pytest --psweep` against plain pytest on the same number of items, in one run.

A sweep of N trivial psets versus a ``@pytest.mark.parametrize`` test with N cases,
serial and with ``-n 2``; each measured in REPEAT fresh pytest processes, taken in
turns so that the machine's drift hits all three alike; the best, the median and
the median of the ratios within each turn.
Plugins installed beside ours that are not part of the comparison (pytest-randomly,
pytest-benchmark, hypothesis) are disabled in every run.
Then the time and peak memory of collecting and running a 100k-pset sweep.

    python benchmarks/bench_plugin.py [N] [REPEAT]
"""

from __future__ import annotations

import statistics
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
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)

COMMON = [
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
    "-p",
    "no:benchmark",
    "-p",
    "no:hypothesispytest",
]


def pytest_seconds(folder: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON, *args],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def clear(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()


def measure(folder: Path, runs: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Seconds of each run, REPEAT times, in turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, args in runs.items():
            if (folder / "calc").exists():
                clear(folder / "calc")
            times[name].append(pytest_seconds(folder, args))
    return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sweep_mul.py").write_text(SWEEP.format(n=n))
        (folder / "test_mul.py").write_text(PLAIN.format(n=n))
        (folder / "test_marked.py").write_text(MARKED.format(n=n))
        print(f"{n} items, {repeat} pytest processes each; 'marked' is a parametrize test")
        print("with the sweep's marks and dict params: psweep / marked is the plugin's own cost")
        print(
            f"{'mode':<8} {'':<6} {'plain s':>8} {'marked s':>9} {'psweep s':>9} "
            f"{'psweep/plain':>13} {'psweep/marked':>14}"
        )
        for label, extra in (("serial", ["-p", "no:xdist"]), ("-n 2", ["-n", "2"])):
            times = measure(
                folder,
                {
                    "plain": [*extra, "test_mul.py"],
                    "marked": [*extra, "test_marked.py"],
                    "psweep": [*extra, "--psweep", "sweep_mul.py"],
                },
                repeat,
            )
            for stat, pick in (("best", min), ("median", statistics.median)):
                plain, marked, swept = (pick(times[k]) for k in ("plain", "marked", "psweep"))
                print(
                    f"{label:<8} {stat:<6} {plain:8.2f} {marked:9.2f} {swept:9.2f} "
                    f"{swept / plain:13.3f} {swept / marked:14.3f}"
                )
            # each psweep process against the plain and marked ones of its own turn,
            # seconds apart: the machine's drift over the minutes of a run cancels out
            paired = [s / p for s, p in zip(times["psweep"], times["plain"])]
            paired_marked = [s / m for s, m in zip(times["psweep"], times["marked"])]
            print(
                f"{label:<8} {'paired':<6} {'':>8} {'':>9} {'':>9} "
                f"{statistics.median(paired):13.3f} {statistics.median(paired_marked):14.3f}"
                f"   (median of per-turn ratios; range {min(paired):.2f}-{max(paired):.2f})"
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
                f"psweep {swept[0]:6.1f} s {swept[1]:6.0f} MiB (writer process "
                f"{swept[2]:4.0f} MiB)   ratio {swept[0] / plain[0]:.2f} s, "
                f"{swept[1] / plain[1]:.2f} memory"
            )


def peak_run(folder: Path, args: list[str]) -> tuple[float, float, float]:
    """Seconds and peak memory (MiB) of one pytest process and of its largest child."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PEAK, *COMMON, "-p", "no:xdist", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak = next(line.split() for line in out.stdout.splitlines() if line.startswith("PEAK_KB"))
    return seconds, int(peak[1]) / 1024, int(peak[2]) / 1024


if __name__ == "__main__":
    main()
