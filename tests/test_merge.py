"""``psweep merge`` against running tasks, damaged files and odd arrays, with real
shard tasks (pytest sessions in subprocesses) and real ``psweep merge`` processes; a
merge or status whose output is not what a test is about runs through ``cli.main`` in
the test's process (a process costs 0.3 CPU-s)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep import journal, liveness
from tests.processes import (
    copy_study,
    make_study,
    psweep_here,
    run_session,
    start_script,
    start_session,
    stop,
    wait_for,
    wait_for_line,
)

SLOW = """
    import os, time
    import pytest_psweep as ps

    @ps.sweep(ps.plist("x", range(20)))
    def sweep_slow(pset):
        if pset["x"] == 5:
            open("halfway", "w").close()
        time.sleep(0.3)
        return {"y": pset["x"]}
"""


def psweep(folder: Path, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, **env},
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done


def psweep_main(capsys: pytest.CaptureFixture[str], folder: Path, *args: str) -> str:
    """``psweep ARGS`` through ``cli.main`` in this process, in ``folder``: its stdout."""
    done = psweep_here(capsys, *args, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def shard_dir(folder: Path) -> Path:
    return folder / "calc" / "shards"


def test_merge_final_leaves_a_running_task_s_journal_alone(pytester, capsys):
    pytester.makepyfile(sweep_slow=SLOW)
    proc = start_session(pytester, "--psweep-shard=0/1", "--psweep-run-id=ARR")
    try:
        wait_for(pytester.path / "halfway")
        final = psweep(pytester.path, "merge", "calc", "--final")
        assert "--final left 1 journal of tasks that still run alone" in final.stdout
        assert "holds its lock" in final.stdout
        (jnl,) = shard_dir(pytester.path).glob("*.jnl")  # not removed, not finalised
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    assert not jnl.exists()  # the task ended as tasks do: its journal became its .shard
    after = psweep_main(capsys, pytester.path, "merge", "calc", "--final")
    assert "sweep_slow.py::sweep_slow: 20 passed, 0 missing" in after
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert len(db) == 20 and set(db["_outcome"]) == {"passed"}


def test_a_task_whose_journal_was_taken_keeps_its_rows_and_fails(pytester, capsys):
    pytester.makepyfile(sweep_slow=SLOW)
    proc = start_session(pytester, "--psweep-shard=0/1", "--psweep-run-id=ARR", output=True)
    try:
        wait_for(pytester.path / "halfway")
        (jnl,) = shard_dir(pytester.path).glob("*.jnl")
        jnl.unlink()  # as a merge that found no sign of life would
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        assert proc.wait(timeout=120) == pytest.ExitCode.INTERNAL_ERROR, out
    finally:
        stop(proc)
    assert f"{jnl} was taken away while this task ran" in out
    assert "all its rows are written again to" in out
    merged = psweep_main(capsys, pytester.path, "merge", "calc")
    assert "sweep_slow.py::sweep_slow: 20 passed, 0 missing" in merged
    assert len(ps.df_read(pytester.path / "calc" / "results.pk")) == 20


BEATER = """
import os, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
open(path, "a").close()
print("beating", flush=True)
while not os.path.exists(path + ".stop"):
    os.utime(path)
    time.sleep(seconds)
"""


def test_a_heartbeat_keeps_a_journal_alive_where_its_lock_says_nothing(
    pytester, tmp_path, monkeypatch
):
    """A task on another node of a filesystem where flock does not reach this one:
    its lock is free here, its heartbeat (the lock file's mtime) is what tells."""
    pytester.makepyfile(sweep_slow=SLOW.replace("range(20)", "range(3)"))
    monkeypatch.setenv("PSWEEP_HEARTBEAT", "0.2")  # the task's, in its manifest
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/1", "--psweep-run-id=ARR")
    (shard,) = shard_dir(pytester.path).glob("*.shard")
    jnl = shard.with_suffix(journal.SUFFIX)
    shard.rename(jnl)  # as it was while its task ran ...
    manifest = shard.with_suffix(".json")  # ... on another host
    manifest.write_text(manifest.read_text().replace('"host": "', '"host": "elsewhere-'))
    lock = journal.lock_path(jnl)
    (tmp_path / "beat.py").write_text(BEATER)
    beater = start_script(str(tmp_path / "beat.py"), lock, "0.1")
    try:
        wait_for_line(beater, "beating")
        started = time.monotonic()
        final = psweep(pytester.path, "merge", "calc", "--final")
        assert "flock may not work here" in final.stdout, final.stdout
        assert jnl.exists() and time.monotonic() - started < 30
        Path(lock + ".stop").touch()
        assert beater.wait(timeout=30) == 0
    finally:
        stop(beater)
    # its heartbeat stops: a --final merge waits until it is stale, then takes it
    final = psweep(pytester.path, "merge", "calc", "--final")
    assert "left" not in final.stdout and not jnl.exists()
    assert "sweep_slow.py::sweep_slow: 3 passed, 0 missing" in final.stdout


def test_liveness_by_lock_heartbeat_and_pid(tmp_path):
    jnl = tmp_path / "r.0of1.abc.jnl"
    jnl.touch()
    assert liveness.alive(jnl, time.time(), 1.0) == (False, "no lock file", True)
    lock = Path(journal.lock_path(jnl))
    lock.touch()
    os.utime(lock, (time.time() - 10, time.time() - 10))
    assert not liveness.alive(jnl, time.time(), 1.0).alive  # 10 s > 3 beats of 1 s
    assert liveness.alive(jnl, time.time(), 10.0).alive  # 10 s < 3 beats of 10 s
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    life = liveness.alive(jnl, time.time(), 10.0, socket.gethostname(), dead.pid)
    assert life == (False, f"process {dead.pid} on this host has ended", True)
    holder = start_script(
        "-c",
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
        str(lock),
    )
    try:
        wait_for_line(holder, "held")
        assert liveness.alive(jnl, time.time() + 3600, 1.0) == (True, "holds its lock", True)
    finally:
        stop(holder)


SWEEPS = """
    import os, signal
    import pytest_psweep as ps

    @ps.sweep(ps.plist("x", range(20)))
    def sweep_a(pset):
        if pset["x"] == 3:
            raise ValueError("x=3 is broken")
        return {"y": pset["x"]}
"""

NEW_SWEEP = """
    import os, signal
    import pytest_psweep as ps

    @ps.sweep(ps.plist("z", range(4)))
    def sweep_b(pset):
        os.kill(os.getpid(), signal.SIGKILL)
"""


# SWEEPS run as the one shard of run "one", for the tests that go on from it, each in a
# copy (one xdist worker: loadgroup).
ONE_SHARD = pytest.mark.xdist_group("merge_one_shard")


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("one_shard"), sweep_a=SWEEPS)
    run_session(folder, "--psweep-shard=0/1", "--psweep-run-id=one").assert_outcomes(
        passed=19, failed=1
    )
    return folder


@ONE_SHARD
def test_a_new_sweep_without_rows_beside_other_sweeps_is_counted_missing(
    one_shard, pytester, capsys
):
    copy_study(one_shard, pytester.path, "sweep_a.py", "calc")
    psweep_main(capsys, pytester.path, "merge", "calc")
    pytester.makepyfile(sweep_b=NEW_SWEEP)
    killed = pytester.runpytest_subprocess(
        "--psweep", "--psweep-shard=0/1", "--psweep-run-id=two", "sweep_b.py"
    )
    assert killed.ret != 0
    merged = psweep(pytester.path, "merge", "calc")  # was KeyError: '_sweep'
    assert "run two:" in merged.stdout
    assert "sweep_b.py::sweep_b: 0 passed, 4 missing (owed by shards 0 of 1)" in merged.stdout
    assert "1 pset started in journals" in merged.stdout


@ONE_SHARD
def test_a_damaged_shard_file_is_reported_and_quarantined(one_shard, pytester):
    copy_study(one_shard, pytester.path, "sweep_a.py", "calc")
    (shard,) = shard_dir(pytester.path).glob("*.shard")
    blob = shard.read_bytes()
    shard.write_bytes(blob[:-40])  # a copy cut short, a disk that filled
    merged = psweep(pytester.path, "merge", "calc")
    # the last record, cut short, was a finished row: its pset's started record is no
    # crash (the task ended; the row is in the bytes lost), so it is said, not a row
    name = f"calc/shards/{shard.name}"
    assert (
        f"psweep merge: {name} was damaged: 19 rows kept, "
        f"{len(blob) - 40 - blob.rindex(b'PSWJ')} bytes lost, 1 started pset without a "
        "row (theirs may be among the bytes lost: run them again with --psweep-skip-dups); "
        f"moved to calc/shards/quarantine/{shard.name}"
    ) in merged.stdout
    target = shard_dir(pytester.path) / "quarantine" / shard.name
    assert target.read_bytes() == blob[:-40] and not shard.exists()  # never deleted
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert db["_outcome"].value_counts().to_dict() == {"passed": 18, "failed": 1}


def test_one_run_id_with_different_shard_counts_is_refused(pytester):
    pytester.makepyfile(sweep_a=SWEEPS)
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=1/3", "--psweep-run-id=R")
    (first,) = shard_dir(pytester.path).glob("*.shard")
    # a task of another count under the same run id starts: refused, nothing runs
    refused = pytester.runpytest_subprocess("--psweep", "--psweep-shard=2/4", "--psweep-run-id=R")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        [f"*--psweep-run-id=R: this task is shard 2/4, but {first.parent}/R.1of3.* is of*"]
    )
    assert sorted(p.suffix for p in shard_dir(pytester.path).iterdir()) == [".json", ".shard"]
    # two tasks that started together, each before the other's journal existed
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=2/4", "--psweep-run-id=S")
    for path in shard_dir(pytester.path).glob("S.*"):
        path.rename(path.with_name("R." + path.name[2:]))
        if path.suffix == ".json":
            moved = path.with_name("R." + path.name[2:])
            moved.write_text(moved.read_text().replace('"S"', '"R"'))
    merged = psweep(pytester.path, "merge", "calc", code=1)
    assert "run id R has shards of different counts: N=3 (" in merged.stdout
    assert ") and N=4 (" in merged.stdout
    assert "missing" not in merged.stdout.split("run id R")[0]  # no count it cannot make
    assert len(ps.df_read(pytester.path / "calc" / "results.pk")) > 0  # rows are kept


def test_missing_counts_the_psets_of_shards_that_never_started(pytester):
    pytester.makepyfile(sweep_a=SWEEPS)
    for index in range(3):  # shard 3 of 4 never starts
        pytester.runpytest_subprocess("--psweep", f"--psweep-shard={index}/4", "--psweep-run-id=A")
    db = psweep(pytester.path, "merge", "calc")
    owned = sum(1 for x in range(20) if int(ps.pset_hash({"x": x}), 16) % 4 == 3)
    assert owned, "the grid leaves shard 3 no psets: choose another"
    broken = int(int(ps.pset_hash({"x": 3}), 16) % 4 != 3)
    line = (
        f"sweep_a.py::sweep_a: {20 - owned - broken} passed, {broken} failed, "
        f"{owned} missing (owed by shards 3 of 4)"
    )
    assert line in db.stdout, db.stdout
    assert "shards not started: 3 of 4" in db.stdout


def test_gathered_rows_make_the_frame_rows_as_dicts_make():
    """``psweep merge`` keeps rows column by column in compact chunks: the DataFrame
    is the one the rows as dicts give (types, missing keys, order by time)."""
    from pytest_psweep.database import Columns
    from pytest_psweep.gather import Gather

    def row(n: int, **more: object) -> dict[str, object]:
        return {
            "_time_utc": 1_700_000_000_000_000 + (n * 7919) % 5000,
            "_pset_id": f"id{n}",
            "_sweep": "s",
            "a": n,
            "b": n / 3,
            "big": 2**70 if n == 3 else n,
            **more,
        }

    first = [row(n, note=None if n % 2 else "x") for n in range(5000)]
    second = [row(n, mixed=[1.5, "two", None][n % 3]) for n in range(5000, 5100)]
    gather = Gather()
    gather.add(iter(first))
    gather.add(iter(second))
    expected = Columns(sorted(first + second, key=lambda r: r["_time_utc"])).frame()
    import pandas as pd

    pd.testing.assert_frame_equal(gather.frame(), expected)


def test_rows_of_a_file_that_cannot_be_decoded_are_taken_back():
    from pytest_psweep.gather import Gather

    def rows():
        for n in range(5000):  # more than a chunk: some are kept as arrays already
            yield {"_time_utc": n + 1, "a": n + 1, "more": n}
        raise journal.Undecodable("no such module")

    gather = Gather()
    gather.add(iter([{"_time_utc": 0, "a": 0}]))
    with pytest.raises(journal.Undecodable):
        gather.add(rows())
    assert gather.count == 1
    frame = gather.frame()
    assert list(frame["a"]) == [0] and list(frame) == ["_time_utc", "a"]


def test_the_newest_array_stays_newest_when_merge_finalises_an_older_one(pytester, capsys):
    pytester.makepyfile(sweep_a=SWEEPS, sweep_b=NEW_SWEEP)
    killed = pytester.runpytest_subprocess(
        "--psweep", "--psweep-shard=0/1", "--psweep-run-id=old", "sweep_b.py"
    )
    assert killed.ret != 0  # its journal stays, with a started pset
    pytester.runpytest_subprocess(
        "--psweep", "--psweep-shard=0/1", "--psweep-run-id=new", "sweep_a.py"
    )
    # --final takes the old array's journal and writes its counts into its manifest
    final = psweep(pytester.path, "merge", "calc", "--final")
    assert "run new:" in final.stdout and "run old:" not in final.stdout, final.stdout
    assert "sweep_a.py::sweep_a: 19 passed, 1 failed, 0 missing" in final.stdout
    shown = psweep_main(capsys, pytester.path, "status", "calc")
    assert "run new, 1 shard: 1 ended" in shown, shown
