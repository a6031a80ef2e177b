"""``psweep status`` while a real shard task runs, after it ended, was killed, and
was merged: read from the small files tasks write, never the database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep import cli
from pytest_psweep import status as array_status
from pytest_psweep.calcdir import CalcDir
from tests.processes import copy_study, make_study, run_session, start_session, stop, wait_for

SLOW = """
    import os, time
    import pytest_psweep as ps

    @ps.sweep(ps.plist("x", range(20)))
    def sweep_slow(pset):
        if pset["x"] == 5:
            open("halfway", "w").close()
        if os.path.exists("block_at") and pset["x"] == int(open("block_at").read()):
            while not os.path.exists("go"):
                time.sleep(0.05)
        time.sleep(0.3)
        return {"y": pset["x"]}
"""


def status(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "status", "calc", *args],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for_shown(folder: Path, text: str, timeout: float = 60) -> None:
    """Wait until the status of folder's calc dir shows ``text``, read in this process:
    it reads small files only, the same as ``psweep status`` (no process per look)."""
    calc_dir = CalcDir(folder / "calc")
    end = time.monotonic() + timeout
    while True:
        shown = "\n".join(array_status.status(calc_dir).lines(calc_dir.path))
        if text in shown:
            return
        assert time.monotonic() < end, f"{text!r} not in:\n{shown}"
        time.sleep(0.05)


def wait_for_status(folder: Path, text: str, timeout: float = 60) -> str:
    """What ``psweep status`` shows once it shows ``text``: asked once the status read
    in this process shows it (again while the files catch up, which is seldom)."""
    end = time.monotonic() + timeout
    wait_for_shown(folder, text, timeout)
    while True:
        shown = status(folder)
        if text in shown:
            return shown
        assert time.monotonic() < end, f"{text!r} not in:\n{shown}"
        time.sleep(0.1)


def owned(index: int, count: int) -> list[int]:
    return [x for x in range(20) if int(ps.pset_hash({"x": x}), 16) % count == index]


def test_status_of_a_running_then_ended_then_merged_array(pytester, monkeypatch):
    pytester.makepyfile(sweep_slow=SLOW)
    monkeypatch.setenv("PSWEEP_HEARTBEAT", "0.2")
    (pytester.path / "calc").mkdir()
    assert "no job-array shard has started" in status(pytester.path)
    mine = owned(0, 2)
    assert len(mine) >= 3, "the grid gives shard 0 too few psets to watch it run"
    (pytester.path / "block_at").write_text(str(mine[2]))  # 2 passed, 1 running
    proc = start_session(pytester, "--psweep-shard=0/2", "--psweep-run-id=ARR")
    try:
        wait_for(pytester.path / "calc" / "shards")
        shown = wait_for_status(pytester.path, "2 passed")
        host = socket.gethostname()
        assert "run ARR, 2 shards: 1 running, 1 not started" in shown, shown
        assert "sweep_slow.py::sweep_slow: 2 passed, 1 running, 17 missing" in shown, shown
        assert "  2 rows wait in shard files" in shown
        assert f"  shard 0/2 on {host}: running, wrote 0 s ago" in shown
        assert "  shards not started: 1" in shown and "  time left: about" in shown
        (pytester.path / "go").touch()
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    shown = status(pytester.path)
    assert "run ARR, 2 shards: 1 ended, 1 not started" in shown, shown
    line = f"sweep_slow.py::sweep_slow: {len(mine)} passed, {20 - len(mine)} missing"
    assert line in shown and f"{len(mine)} rows wait in shard files" in shown
    assert "time left" not in shown  # no task runs: nothing to estimate from
    assert cli.main(["merge", "calc"]) == 0  # in this process (test_shards: as a process)
    shown = status(pytester.path)
    assert line in shown and "rows wait" not in shown, shown


def test_status_says_a_killed_task_is_dead_and_its_pset_crashed(pytester, monkeypatch):
    pytester.makepyfile(sweep_slow=SLOW)
    (pytester.path / "block_at").write_text("12")
    monkeypatch.setenv("PSWEEP_HEARTBEAT", "0.2")
    proc = start_session(pytester, "--psweep-shard=0/1", "--psweep-run-id=ARR")
    try:
        wait_for(pytester.path / "halfway")
        wait_for_shown(pytester.path, "12 passed, 1 running")  # x=12 waits for "go"
    finally:
        stop(proc, signal.SIGKILL)
    shown = wait_for_status(pytester.path, ": dead, wrote")
    assert "sweep_slow.py::sweep_slow: 12 passed, 1 crashed, 7 missing" in shown, shown
    assert "run ARR, 1 shard: 1 dead" in shown


@pytest.fixture(scope="module")
def ended_task(tmp_path_factory):
    """A task of two psets that ended (run W, not merged), run once: the tests work in
    copies of it."""
    folder = make_study(
        tmp_path_factory.mktemp("ended_task"), sweep_slow=SLOW.replace("range(20)", "range(2)")
    )
    run_session(folder, "--psweep-shard=0/1", "--psweep-run-id=W").assert_outcomes(passed=2)
    return folder


# the tests of the ended task on one xdist worker (--dist loadgroup): it runs once
ENDED_TASK = pytest.mark.xdist_group("status_ended_task")


@ENDED_TASK
def test_status_watch_shows_it_again_and_again(pytester, ended_task):
    copy_study(ended_task, pytester.path)
    shown = status(pytester.path, "--watch", "0.1", "--times", "2")
    assert shown.count("sweep_slow.py::sweep_slow: 2 passed, 0 missing") == 2
    assert shown.count("\n-- ") == 2  # not a terminal: one block after another
    assert not list((pytester.path / "calc").glob("**/*.lock"))  # it took no lock


@ENDED_TASK
def test_status_is_read_only(pytester, ended_task):
    copy_study(ended_task, pytester.path)
    calc = pytester.path / "calc"
    before = {p: p.stat().st_mtime_ns for p in calc.rglob("*")}
    os.chmod(calc / "shards", 0o555)
    try:
        assert "2 passed" in status(pytester.path)
    finally:
        os.chmod(calc / "shards", 0o755)
    assert {p: p.stat().st_mtime_ns for p in calc.rglob("*")} == before
