"""Nothing lost at the edges (SPEC §3 "Nothing lost", "No file can block a calc dir",
§6): each scenario with real processes, real signals and real files, rows counted
against marker files that each pset writes when its function completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import pytest_psweep as ps
from pytest_psweep import engine, journal
from tests.processes import (
    kill_group,
    start_session,
    stop,
    wait_for,
    wait_for_journal,
    wait_for_marks,
    wait_for_no_process_in,
)

MARKED = """
    import os, pathlib, time
    import pytest_psweep as ps

    MARKS = pathlib.Path({marks!r})

    @ps.sweep(ps.grid(a=list(range({n}))))
    def sweep_marked(pset):
        if pset["a"] == {stop_at}:
            pathlib.Path("ready").write_text("x")
            {action}
        time.sleep({sleep})
        MARKS.mkdir(exist_ok=True)
        (MARKS / str(pset["a"])).write_text("done")
        return {{"r": pset["a"] * 2, "blob": "x" * {blob}}}
"""


def marked(pytester, n=10, stop_at=-1, action="pass", sleep=0.0, blob=1, marks=None):
    """A sweep whose psets leave a marker file (outside the calc dir) when done."""
    marks = marks or pytester.path / "marks"
    pytester.makepyfile(
        sweep_marked=MARKED.format(
            n=n, stop_at=stop_at, action=action, sleep=sleep, blob=blob, marks=str(marks)
        )
    )
    return marks


def done(marks: Path) -> list[int]:
    return sorted(int(p.name) for p in marks.iterdir()) if marks.exists() else []


def outcomes(df) -> dict[str, list[Any]]:
    return {k: sorted(v) for k, v in df.groupby("_outcome")["a"].apply(list).items()}


WORKERS = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])


# -- journals that must not block a calc dir -----------------------------------------


def test_a_poisoned_journal_is_quarantined_and_later_runs_go_on(pytester, read_db):
    # what earlier versions left: a row whose _time_utc is text, then intact rows
    good = [
        engine.Run(str(pytester.path / "calc")).execute(lambda p: {"r": 1}, {"a": a})
        for a in (7, 8)
    ]
    poisoned = dict(good[0], _pset_id="poison", _time_utc="x")
    path = pytester.path / "calc" / "journal" / "old.jnl"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        journal.encode_row(good[0]) + journal.encode_row(poisoned) + journal.encode_row(good[1])
    )
    marked(pytester, n=2)
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "psweep: merged 2 rows left by an interrupted session into *results.pk",
            f"psweep: journal {path} was damaged (damaged records): 2 rows kept, 1 record "
            "lost; moved to */journal/quarantine/old.jnl",
        ]
    )
    assert sorted(read_db()["a"]) == [0, 1, 7, 8]
    result = pytester.runpytest_subprocess("--psweep")  # never in the way again
    result.assert_outcomes(passed=2)
    assert "moved to" not in result.stdout.str()


def test_psweep_recover_reports_a_damaged_journal(tmp_path):
    row = engine.Run(str(tmp_path / "calc")).execute(lambda p: {"r": 1}, {"a": 1})
    path = tmp_path / "calc" / "journal" / "old.jnl"
    path.parent.mkdir(parents=True)
    path.write_bytes(journal.encode_row(row) + bytes(64))
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "recover", str(tmp_path / "calc")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "1 row kept, 1 record lost; moved to" in done.stderr
    assert done.stdout.startswith("recovered 1 row into")


# -- processes that die ----------------------------------------------------------------

CRASHES = {
    "os_exit": "os._exit(1)",
    "segfault": "import ctypes; ctypes.string_at(0)",
    "oom_kill": "import signal; os.kill(os.getpid(), signal.SIGKILL)",
}


@pytest.mark.long
@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_pset_that_kills_a_worker_gets_a_crashed_row(pytester, read_db, crash):
    marks = marked(pytester, n=6, stop_at=2, action=CRASHES[crash])
    result = pytester.runpytest_subprocess("--psweep", "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*psets 5 passed, 0 failed, 0 skipped, 1 crashed; 6 rows*"])
    df = read_db()
    assert outcomes(df) == {"crashed": [2], "passed": done(marks)}
    assert "died before it finished" in df.loc[df["a"] == 2, "_error"].iloc[0]
    # --lf and skip-dups take a crashed pset as not done
    again = pytester.runpytest_subprocess(
        "--psweep", "--psweep-skip-dups", "-n", "2", "-p", "no:randomly"
    )
    again.assert_outcomes(passed=0, failed=1, skipped=5)


def test_a_pset_that_kills_a_serial_session_gets_a_crashed_row_in_the_next(pytester, read_db):
    marks = marked(pytester, n=6, stop_at=2, action=CRASHES["os_exit"])
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly")
    assert result.ret == 1  # the process itself ended with the pset's exit code
    assert not (pytester.path / "calc" / "results.pk").exists()
    marked(pytester, n=0)
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["psweep: merged 3 rows left by an interrupted session*"])
    df = read_db()
    assert outcomes(df) == {"crashed": [2], "passed": done(marks)} and done(marks) == [0, 1]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_ctrl_c_writes_every_finished_row_and_exits_2(pytester, read_db, workers):
    # a terminal's Ctrl-C reaches the whole process group, the writer included
    marks = marked(pytester, n=30, stop_at=5, action="time.sleep(60)", sleep=0.05)
    proc = start_session(pytester, *workers, start_new_session=True, output=True)
    wait_for(pytester.path / "ready")
    # rows wait in the journal when Ctrl-C comes: a=0..4 serially, and with two
    # workers at least 3 (a=5 hangs on one; the other goes on meanwhile)
    wait_for_journal(pytester.path / "calc", finished=3 if workers else 5)
    kill_group(proc, signal.SIGINT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode()  # until the session has exited
    assert stop(proc, sig=0) == 2
    assert "/calc/results.pk: psets" in output
    assert "interrupted: the rows of the psets that finished are kept" in output
    assert "--psweep-skip-dups" in output
    df = read_db()
    finished = done(marks)
    assert sorted(df["a"]) == finished and set(df["_outcome"]) == {"passed"}
    assert 5 not in finished  # interrupted: no row, and not a crash
    assert os.listdir(pytester.path / "calc" / "journal") == []


# -- disks that are full or read-only --------------------------------------------------


@pytest.fixture
def tmpfs():
    """Mount a small tmpfs (root only: CI runs as root; elsewhere the test skips)."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "64k", readonly: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if readonly else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs at {path}: {done.stderr.strip()} (needs root)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_a_read_only_calc_dir_stops_before_the_first_pset(pytester, tmpfs):
    marks = marked(pytester, n=3)
    tmpfs(pytester.path / "calc", readonly=True)
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*psweep: journal */calc/journal/*.jnl cannot be written (Read-only file system)*"]
    )
    assert done(marks) == []


@pytest.mark.long
def test_the_cli_on_a_read_only_calc_dir_says_so_in_one_line(pytester, tmpfs):
    calc = tmpfs(pytester.path / "calc", size="16m")
    marked(pytester, n=4)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=4)
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/2")  # a shard file waits
    marked(pytester, n=4, stop_at=2, action="os._exit(1)")
    pytester.runpytest_subprocess("--psweep")  # dies: its journal waits
    remount(calc, "ro")
    psweep = [sys.executable, "-m", "pytest_psweep.cli"]
    for command in (["recover"], ["merge"], ["merge", "--final"], ["migrate"]):
        done = subprocess.run(
            [*psweep, *command, "calc"], capture_output=True, text=True, cwd=pytester.path
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert ".lock cannot be made (Read-only file system): calc dir" in done.stderr
        assert "make it writable" in done.stderr
    shown = subprocess.run(
        [*psweep, "show", "calc"], capture_output=True, text=True, cwd=pytester.path
    )  # reading takes no lock
    assert shown.returncode == 0 and "[4 rows]" in shown.stdout, shown.stderr
    export = subprocess.run(
        [*psweep, "export", "calc", "calc/out.csv"],
        capture_output=True,
        text=True,
        cwd=pytester.path,
    )
    assert export.returncode == 1 and export.stderr.count("\n") == 1, export.stderr
    assert "calc/out.csv cannot be used (Read-only file system)" in export.stderr


def test_a_full_disk_during_the_session_stops_it_and_keeps_the_rows(pytester, read_db, tmpfs):
    calc = tmpfs(pytester.path / "calc", size="64k")
    marks = marked(pytester, n=40, blob=4000)
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        ["*psweep: journal */calc/journal/*.jnl cannot be written (No space left on device)*"]
    )
    assert not (calc / "results.pk").exists()
    finished = done(marks)
    assert 3 < len(finished) < 40  # it stopped early
    remount(calc, "size=16m")  # space again: the next run merges what was kept
    marked(pytester, n=0, marks=marks)
    pytester.runpytest_subprocess("--psweep")
    df = read_db()
    # every pset that finished has its row, but the one whose record did not fit
    assert set(df["a"]) <= set(finished) and len(df) >= len(finished) - 1


def test_a_full_disk_at_the_final_write_keeps_the_journal(pytester, read_db, tmpfs):
    calc = tmpfs(pytester.path / "calc", size="400k")
    marks = marked(pytester, n=30, blob=8000)  # journal ~250k, database needs more
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=30)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*results.pk cannot be written (No space left on device)*"])
    assert not (calc / "results.pk").exists()
    assert [p for p in calc.iterdir() if p.name.endswith(".tmp")] == []
    remount(calc, "size=16m")
    marked(pytester, n=0, marks=marks)
    pytester.runpytest_subprocess("--psweep")
    assert sorted(read_db()["a"]) == done(marks) == list(range(30))


# -- locks, leftovers, permissions -----------------------------------------------------


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process that holds a lock file (a suspended session, say)."""
    code = (
        "import sys, time, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
        "print('held', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.long
@WORKERS
def test_a_held_lock_is_named_and_given_up_on_with_the_rows_journaled(pytester, read_db, workers):
    marks = marked(pytester, n=3)
    (pytester.path / "calc").mkdir()
    holder = hold_lock(pytester.path / "calc" / "results.pk.lock")
    try:
        result = pytester.runpytest_subprocess("--psweep", "--psweep-lock-timeout=1", *workers)
    finally:
        stop(holder)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stderr.fnmatch_lines(["psweep: waiting for */calc/results.pk.lock, held by another*"])
    result.stdout.fnmatch_lines(["*results.pk.lock was held by another process for 1 s; gave up*"])
    pytester.runpytest_subprocess("--psweep", "-k", "nothing")  # lock free: merged
    assert sorted(read_db()["a"]) == done(marks) == [0, 1, 2]


def test_ps_run_takes_the_lock_timeout_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PSWEEP_LOCK_TIMEOUT", "0.5")
    (tmp_path / "calc").mkdir()
    holder = hold_lock(tmp_path / "calc" / "results.pk.lock")
    try:
        with pytest.raises(ps.PsweepError, match="held by another process for 0.5 s; gave up"):
            ps.run(lambda p: {"r": 1}, ps.plist("a", [1, 2]))
    finally:
        stop(holder)
    assert "waiting for" in capsys.readouterr().err
    assert list(ps.run(lambda p: {"r": 1}, ps.plist("a", [3]))["a"]) == [1, 2, 3]


def test_temp_files_of_a_killed_write_are_removed_and_the_umask_is_followed(tmp_path):
    calc = tmp_path / "calc"
    calc.mkdir()
    stale = calc / ".results.pk.abc123.tmp"
    stale.write_bytes(b"half a database")
    old = os.umask(0o027)
    try:
        ps.run(lambda p: {"r": 1}, ps.plist("a", [1]), calc_dir=str(calc))
    finally:
        os.umask(old)
    assert not stale.exists()
    assert (calc / "results.pk").stat().st_mode & 0o777 == 0o640


def test_ctrl_c_to_the_xdist_controller_alone_keeps_the_rows_of_every_report(pytester, read_db):
    # SIGINT to the controller only (kill -INT <pid>, as some CI runners send it): the
    # workers go on finishing psets until xdist has stopped them, and their reports
    # come in while it does; each has its row (973 of 1279 were lost before)
    marks = marked(pytester, n=3000, sleep=0.002)
    proc = start_session(pytester, "-n", "2", "-p", "no:randomly")
    wait_for_marks(marks, 101)  # psets finish while xdist stops the workers
    proc.send_signal(signal.SIGINT)
    assert stop(proc, sig=0) == 2
    rows, finished = set(read_db()["a"]), set(done(marks))
    assert rows <= finished
    # at most the psets whose workers were stopped between the marker and the report
    assert len(finished - rows) <= 2, sorted(finished - rows)
    assert len(finished) > 100


def test_a_full_disk_at_the_start_of_session_merge_is_a_clear_error(pytester, tmpfs):
    calc = tmpfs(pytester.path / "calc", size="200k")
    run = engine.Run(str(calc))
    rows = [run.execute(lambda p: {"blob": "x" * 30_000}, {"a": a}) for a in range(5)]
    dead = calc / "journal" / "dead.jnl"
    dead.parent.mkdir()
    dead.write_bytes(b"".join(journal.encode_row(row) for row in rows))  # ~150k of 200k
    marks = marked(pytester, n=2)
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*/calc/results.pk cannot be written (No space left on device)*"])
    assert dead.exists() and done(marks) == []  # nothing ran, nothing lost


def test_ps_run_with_a_pool_saves_every_row_its_workers_finished(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()

    def func(pset):
        if pset["a"] == 2:
            time.sleep(0.5)  # the others finish meanwhile, in the other worker
            raise ValueError("pset 2 fails")
        (marks / str(pset["a"])).write_text("done")
        return {"r": pset["a"]}

    with pytest.raises(ValueError, match="pset 2 fails"):
        ps.run(func, ps.plist("a", range(8)), poolsize=2)
    finished = done(marks)
    assert len(finished) > 3  # psets after the failing one finished too
    assert sorted(ps.df_read("calc/results.pk")["a"]) == finished


def test_two_calc_dirs_linking_one_journal_folder_never_take_each_others_rows(tmp_path):
    shared = tmp_path / "fast-disk"
    shared.mkdir()
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "journal").symlink_to(shared)
    script = tmp_path / "dies.py"
    script.write_text(
        "import os, sys\nimport pytest_psweep as ps\n"
        "def f(p):\n    if p['a'] == 2:\n        os._exit(1)\n    return {'r': p['a']}\n"
        "ps.run(f, ps.plist('a', range(4)), calc_dir=sys.argv[1])\n"
    )
    assert subprocess.run([sys.executable, str(script), str(tmp_path / "one")]).returncode == 1
    with pytest.raises(ps.PsweepError, match="the journal folder of calc dir .*one: calc dirs"):
        ps.run(lambda p: {}, ps.plist("b", [1]), calc_dir=tmp_path / "two")
    assert not (tmp_path / "two" / "results.pk").exists()
    df = ps.run(lambda p: {"r": 9}, ps.plist("a", [9]), calc_dir=tmp_path / "one")
    assert list(df["a"]) == [0, 1, 2, 9]  # its own rows, a=2 crashed
    assert list(df["_outcome"].fillna("")) == ["", "", "crashed", ""]


def test_a_session_killed_by_its_pset_leaves_no_writer_traceback(pytester):
    pytester.makepyfile(
        sweep_exit="""
        import os
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_exit(pset):
            os._exit(1)
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == 1
    # the writer, left alone, finds nobody to answer and exits; it shares stderr
    wait_for_no_process_in(pytester.path)
    stderr = (pytester.path / "stderr").read_text()  # where pytester had it written
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr, stderr
    again = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups", "-k", "nothing")
    again.stdout.fnmatch_lines(["*merged 1 row left by an interrupted session*"])
    df = ps.df_read(pytester.path / "calc" / "results.pk")
    assert list(df["_outcome"]) == ["crashed"] and list(df["a"]) == [1]
