"""Progress while psets run (on a real pseudo-terminal) and the dry run's prediction."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep.progress import Progress, duration
from tests.processes import copy_study, make_study, run_session

SLOW = """
    import time
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", list(range(12))))
    def sweep_slow(pset):
        time.sleep(0.05 if pset["a"] < 11 else 0.6)
        assert pset["a"] != 2
        return {"r": pset["a"]}
"""


def in_terminal(folder, *args: str) -> str:
    """Run pytest --psweep with a pseudo-terminal as its stdout and stderr."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--psweep", "-p", "no:randomly", *args],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) in (0, 1)
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))


def passed_runtimes(folder: Path) -> list[float]:
    """The runtimes of SLOW's passed psets in the database, in the order of ``a``
    (a=11, the slow one, last); each at least its sleep, however loaded the machine."""
    df = ps.df_read(folder / "calc" / "results.pk")
    passed = df[df["_outcome"].isna() | (df["_outcome"] == "passed")].sort_values("a")
    runtimes = [float(seconds) for seconds in passed["_pset_runtime"]]
    assert len(runtimes) == 11 and min(runtimes[:-1]) >= 0.05 and runtimes[-1] >= 0.6
    assert runtimes[-1] == max(runtimes)
    return runtimes


PROGRESS_INI = "[pytest]\npsweep_progress_seconds = 0.2\n"


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    """SLOW run once into a pipe, with progress lines due every 0.2 s on a terminal:
    the folder (the dry-run test works in a copy) and the session's result."""
    folder = tmp_path_factory.mktemp("piped")
    make_study(folder, sweep_slow=SLOW, **{"pytest.ini": PROGRESS_INI})
    result = run_session(folder)
    result.assert_outcomes(passed=11, failed=1)
    return folder, result


# the tests that share the piped run on one xdist worker (--dist loadgroup): it runs once
PIPED = pytest.mark.xdist_group("progress_piped")


@pytest.mark.long
@PIPED
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_progress_lines_on_a_terminal(pytester, workers, piped):
    pytester.makepyfile(sweep_slow=SLOW)
    pytester.makeini(PROGRESS_INI)
    output = in_terminal(pytester.path, *workers)
    lines = re.findall(
        r"psweep: (\d+)/12 psets done(, (\d+) failed)?, \S+ so far, about (\S+)", output
    )
    assert lines, output
    done = [int(line[0]) for line in lines]
    assert done == sorted(done) and all(0 < d < 12 for d in done)
    assert all(line[2] == "1" for line in lines if int(line[0]) > 2 and not workers)
    assert all(re.fullmatch(r"\d+:\d\d", line[3]) for line in lines)
    assert "psets 11 passed, 1 failed" in output
    runtimes = passed_runtimes(pytester.path)
    # run again: before the first pset finishes, the estimate of earlier rows
    again = in_terminal(pytester.path, *workers)
    if not workers:
        total = duration(sum(runtimes))
        assert f"psweep: prediction: {total} of pset time for the 11 psets that passed" in again
    else:  # the controller collects nothing: it knows node ids, each sweep's mean runtime
        estimated = re.search(r"psweep: expected: about (\S+) on 2 workers \((\S+) of", again)
        assert estimated is not None, again
        # 12 psets x the mean of the 11 that passed (0.092 s on an idle machine)
        assert estimated[2] == duration(12 * sum(runtimes) / 11)
        assert estimated[1] == duration(12 * sum(runtimes) / 11 / 2)
        assert again.index("expected: about") < again.index("psets done")
    # quiet as pytest's own progress: not under -q, and not into a file or pipe
    assert "psets done" not in in_terminal(pytester.path, "-q", *workers)
    assert "psets done" not in piped[1].stdout.str()


def test_progress_counts_and_estimates():
    now = [0.0]
    progress = Progress(every=5, clock=lambda: now[0])
    progress.total = 10
    progress.started()
    now[0] = 2.0
    assert progress.finished(failed=False) is None  # not due yet
    now[0] = 6.0
    assert progress.finished(failed=True) == (
        "psweep: 2/10 psets done, 1 failed, 0:06 so far, about 0:24 to go"
    )
    now[0] = 7.0
    assert progress.finished(failed=False) is None  # said a second ago
    assert (duration(59.6), duration(61), duration(3723)) == ("1:00", "1:01", "1:02:03")


@PIPED
def test_dry_run_predicts_the_time_from_earlier_rows(pytester, piped):
    copy_study(piped[0], pytester.path)  # SLOW ran: 11 passed, 1 failed
    runtimes = passed_runtimes(pytester.path)  # 1.1 s on an idle machine: "0:01"
    for dry_run in (["--co"], ["--psweep-simulate"]):
        result = pytester.runpytest_subprocess("--psweep", *dry_run)
        result.stdout.fnmatch_lines(
            [
                f"prediction: {duration(sum(runtimes))} of pset time for the 11 psets that "
                "passed before (1 never passed: no estimate) (serially; divide by the workers "
                "under -n)",
                f"  slowest: sweep_slow.py::sweep_slow[[]a=11[]] {runtimes[-1]:.3g} s",
            ]
        )
