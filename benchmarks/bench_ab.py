"""A/B of this package's code at several commits, in paired turns, on one machine.

Each TREE is a checkout of pytest-psweep (``git worktree add --detach DIR COMMIT``);
its code is used by putting the tree first on ``PYTHONPATH`` (the installed entry
point names ``pytest_psweep.plugin``, which every tree has). One turn runs the
baseline and then every tree once, seconds apart, so the machine's drift hits all
alike; the result is the median over turns of each tree's ratio to the baseline of
its own turn.

    python benchmarks/bench_ab.py startup [TURNS] TREE ...   # pytest --co -q, empty folder
    python benchmarks/bench_ab.py serial [TURNS] TREE ...    # 10k trivial psets, serial
    python benchmarks/bench_ab.py xdist [TURNS] TREE ...     # 300 CPU-bound psets, -n 2
    python benchmarks/bench_ab.py run [TURNS] TREE ...       # ps.run, 10k fresh, vs psweep

With ``BENCH_CPU=1`` in the environment, CPU seconds instead of wall seconds
(``startup`` and ``serial`` only; steadier on a loaded machine).

Baselines: ``startup`` plain pytest with the plugin disabled (``-p no:psweep``), once
with bytecode caches and once without (a fresh ``PYTHONPYCACHEPREFIX`` per process);
``serial`` a ``@pytest.mark.parametrize`` test of the same size; ``xdist`` the same
parametrize test under ``-n 2``, as speed-up over its serial run against ours;
``run`` psweep 0.16.0's ``run`` (the ``bench`` extra).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PLUGINS_OFF = ["-p", "no:randomly", "-p", "no:benchmark", "-p", "no:hypothesispytest"]
COMMON = ["-q", "-p", "no:cacheprovider", *PLUGINS_OFF]

SWEEP = """
import pytest_psweep as ps

@ps.sweep(ps.plist("a", range({n})))
def sweep_mul(pset):
{body}
"""
PLAIN = """
import pytest

@pytest.mark.parametrize("a", range({n}))
def test_mul(a):
{body}
"""
TRIVIAL = '    return {"r": pset["a"] * 2}'
TRIVIAL_PLAIN = "    assert a * 2 >= 0"
# about 50 ms of pure Python per pset, the same work in both
CPU = "    x = 0\n    for i in range(400_000):\n        x += i % 7\n"
CPU_SWEEP = CPU + '    return {"x": x}'
CPU_PLAIN = CPU + "    assert x >= 0"

RUN = """
import sys, time, tempfile
{module}
def func(pset):
    return {{"r": pset["a"] * 2}}
params = [{{"a": a}} for a in range(10_000)]
with tempfile.TemporaryDirectory() as tmp:
    run(func, params[:100], calc_dir=tmp + "/warm")  # imports done, as bench_run.py's best-of
    start = time.perf_counter()
    run(func, params, calc_dir=tmp + "/calc")
    print(time.perf_counter() - start)
"""


def seconds(command: list[str], folder: Path, env: dict[str, str]) -> float:
    """Wall seconds of the command, or with $BENCH_CPU=1 its CPU seconds (user and
    system, its children included): steadier than wall time on a loaded machine,
    but blind to waiting and to parallelism."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL)
    if done.returncode not in (0, 5):  # 5: no tests collected, as in an empty folder
        raise subprocess.CalledProcessError(done.returncode, command)
    if os.environ.get("BENCH_CPU"):
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - start


def printed(command: list[str], folder: Path, env: dict[str, str]) -> float:
    out = subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return float(out.stdout.split()[-1])


def env_for(tree: str | None, fresh_bytecode: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(Path(tree).resolve())
    if fresh_bytecode:
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="pycache-")
    return env


def turns(
    label: str, count: int, trees: list[str], base: Any, one: Any, higher_is_better: bool = False
) -> None:
    """``base()`` and ``one(tree)`` per turn; per tree the paired median ratio."""
    ratios: dict[str, list[float]] = {tree: [] for tree in trees}
    print(f"{label}: seconds per turn (baseline, then each tree), ratio tree/baseline")
    for turn in range(count):
        b = base()
        values = [one(tree) for tree in trees]
        for tree, value in zip(trees, values):
            ratios[tree].append(b / value if higher_is_better else value / b)
        shown = " ".join(f"{v:8.3f}" for v in values)
        print(f"  turn {turn}: base {b:8.3f}  trees {shown}")
    for tree, found in ratios.items():
        print(
            f"  {tree}: median {statistics.median(found):.3f} "
            f"(range {min(found):.3f}-{max(found):.3f}, {len(found)} turns)"
        )


def startup(count: int, trees: list[str]) -> None:
    """Per tree and turn: ms of ``pytest --co -q`` with the plugin minus without it
    (``-p no:psweep``), the two processes run back to back."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pytest_co = [sys.executable, "-m", "pytest", "--co", *COMMON]
        for fresh in (False, True):
            what = "without bytecode caches" if fresh else "with bytecode caches"
            print(f"pytest --co -q in an empty folder, {what}: ms with the plugin - without")
            for tree in trees:
                costs, plain = [], []
                for _ in range(count):
                    without = seconds([*pytest_co, "-p", "no:psweep"], folder, env_for(tree, fresh))
                    with_it = seconds(pytest_co, folder, env_for(tree, fresh))
                    costs.append(1000 * (with_it - without))
                    plain.append(1000 * without)
                print(
                    f"  {tree}: median {statistics.median(costs):+.1f} ms "
                    f"(range {min(costs):+.1f} to {max(costs):+.1f}; without the plugin "
                    f"{statistics.median(plain):.1f} ms; {count} pairs)"
                )


def serial(count: int, trees: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sweep_mul.py").write_text(SWEEP.format(n=10_000, body=TRIVIAL))
        (folder / "test_mul.py").write_text(PLAIN.format(n=10_000, body=TRIVIAL_PLAIN))
        pytest = [sys.executable, "-m", "pytest", *COMMON, "-p", "no:xdist"]
        turns(
            "10k trivial psets, serial: pytest --psweep / plain parametrize",
            count,
            trees,
            lambda: seconds([*pytest, "-p", "no:psweep", "test_mul.py"], folder, env_for(None)),
            lambda tree: seconds([*pytest, "--psweep", "sweep_mul.py"], folder, env_for(tree)),
        )


def xdist(count: int, trees: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sweep_cpu.py").write_text(SWEEP.format(n=300, body=CPU_SWEEP))
        (folder / "test_cpu.py").write_text(PLAIN.format(n=300, body=CPU_PLAIN))
        pytest = [sys.executable, "-m", "pytest", *COMMON]

        def speedup(args: list[str], tree: str | None) -> float:
            env = env_for(tree)
            return seconds([*pytest, "-p", "no:xdist", *args], folder, env) / seconds(
                [*pytest, "-n", "2", *args], folder, env
            )

        turns(
            "300 CPU-bound psets: speed-up of -n 2, ours / plain xdist's",
            count,
            trees,
            lambda: speedup(["-p", "no:psweep", "test_cpu.py"], None),
            lambda tree: speedup(["--psweep", "sweep_cpu.py"], tree),
            higher_is_better=False,
        )


def run(count: int, trees: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        theirs = RUN.format(module="from psweep import run")
        ours = RUN.format(module="from pytest_psweep import run")
        turns(
            "ps.run, 10k trivial psets into a fresh calc dir: ours / psweep 0.16",
            count,
            trees,
            lambda: printed([sys.executable, "-c", theirs], folder, env_for(None)),
            lambda tree: printed([sys.executable, "-c", ours], folder, env_for(tree)),
        )


def main() -> None:
    what = sys.argv[1]
    rest = sys.argv[2:]
    count = int(rest.pop(0)) if rest and rest[0].isdigit() else 5
    {"startup": startup, "serial": serial, "xdist": xdist, "run": run}[what](count, rest)


if __name__ == "__main__":
    main()
