"""``psweep merge`` against running tasks, damaged files and odd arrays, with real
shard tasks (pytest sessions in subprocesses) and real ``psweep merge`` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import start_script, start_session, stop, wait_for, wait_for_line

import pytest_psweep as ps
from pytest_psweep import journal, liveness

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


def shard_dir(folder: Path) -> Path:
    return folder / "calc" / "shards"


def test_merge_final_leaves_a_running_task_s_journal_alone(pytester):
    pytester.makepyfile(sweep_slow=SLOW)
    proc = start_session(pytester, "--psweep-shard=0/1", "--psweep-run-id=ARR")
    try:
        wait_for(pytester.path / "halfway")
        final = psweep(pytester.path, "merge", "calc", "--final")
        assert "--final left 1 journals of tasks that still run alone" in final.stdout
        assert "holds its lock" in final.stdout
        (jnl,) = shard_dir(pytester.path).glob("*.jnl")  # not removed, not finalised
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    assert not jnl.exists()  # the task ended as tasks do: its journal became its .shard
    after = psweep(pytester.path, "merge", "calc", "--final")
    assert "sweep_slow.py::sweep_slow: 20 passed, 0 missing" in after.stdout
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert len(db) == 20 and set(db["_outcome"]) == {"passed"}


def test_a_task_whose_journal_was_taken_keeps_its_rows_and_fails(pytester):
    pytester.makepyfile(sweep_slow=SLOW)
    proc = start_session(pytester, "--psweep-shard=0/1", "--psweep-run-id=ARR", output=True)
    try:
        wait_for(pytester.path / "halfway")
        (jnl,) = shard_dir(pytester.path).glob("*.jnl")
        jnl.unlink()  # as a merge that found no sign of life would
        out = proc.stdout.read().decode()
        assert proc.wait(timeout=120) == pytest.ExitCode.INTERNAL_ERROR, out
    finally:
        stop(proc)
    assert f"{jnl} was taken away while this task ran" in out
    assert "all its rows are written again to" in out
    merged = psweep(pytester.path, "merge", "calc")
    assert "sweep_slow.py::sweep_slow: 20 passed, 0 missing" in merged.stdout
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
