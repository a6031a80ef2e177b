"""Job-array shards and ``psweep merge`` (SPEC §7), end to end: real pytest sessions
(serial and under xdist), real ``psweep merge`` processes, the database they leave."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep import shards
from tests.processes import start_session, stop, wait_for

SWEEP = """
    import os
    import pytest_psweep as ps

    @ps.sweep(ps.plist("x", range(20)))
    def sweep_a(pset):
        if pset["x"] == 3 and not os.environ.get("FIXED"):
            raise ValueError("x=3 is broken")
        return {"y": pset["x"] ** 2}
"""


def merge(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "merge", str(folder / "calc"), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done


def shard_files(folder: Path) -> list[str]:
    where = folder / "calc" / "shards"
    return sorted(p.suffix for p in where.iterdir()) if where.is_dir() else []


@pytest.mark.long
def test_shards_split_the_psets_and_merge_puts_each_row_in_once(pytester, workers):
    pytester.makepyfile(sweep_a=SWEEP)
    collected = 0
    for index in range(3):
        result = pytester.runpytest_subprocess(
            "--psweep", f"--psweep-shard={index}/3", "--psweep-run-id=array-7", *workers
        )
        outcomes = result.parseoutcomes()
        collected += outcomes.get("passed", 0) + outcomes.get("failed", 0)
        result.stdout.fnmatch_lines(
            [f"*sweep_a.py::sweep_a: * psets (of 20: --psweep-shard={index}/3)*"]
        )
        # a task never writes the database: its rows wait in a file of its own
        assert not (pytester.path / "calc" / "results.pk").exists()
    assert collected == 20
    assert shard_files(pytester.path).count(".shard") == 3

    first = merge(pytester.path)
    assert "20 new rows from 3 shard files" in first.stdout
    assert "sweep_a.py::sweep_a: 19 passed, 1 failed, 0 missing" in first.stdout
    assert shard_files(pytester.path) == [".json"] * 3  # rows in: the files are gone

    again = merge(pytester.path)
    assert "0 new rows" in again.stdout
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert sorted(db["x"]) == list(range(20))
    assert set(db["_run_id"]) == {"array-7"}
    # each pset ran in the shard its hash names
    owner = [f"{int(h, 16) % 3}/3" for h in db["_pset_hash"]]
    assert list(db["_shard"]) == owner
    assert db.loc[db["x"] == 3, "_outcome"].item() == "failed"
    assert sorted(db["_pset_seq"]) == list(range(20))


def test_a_resubmitted_shard_with_skip_dups_runs_only_what_is_left(pytester, workers, monkeypatch):
    pytester.makepyfile(sweep_a=SWEEP)
    for index in range(2):
        pytester.runpytest_subprocess("--psweep", f"--psweep-shard={index}/2")
    owner = next(i for i in range(2) if shards.Shard(i, 2).owns(ps.pset_hash({"x": 3})))
    # the rows are not merged yet; the resubmitted task still sees them
    monkeypatch.setenv("FIXED", "1")
    result = pytester.runpytest_subprocess(
        "--psweep", f"--psweep-shard={owner}/2", "--psweep-skip-dups", *workers
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1 and outcomes["skipped"] >= 5
    merge(pytester.path)
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    latest = ps.df_latest(db)
    assert len(latest) == 20 and set(latest["_outcome"]) == {"passed"}


def test_merge_while_a_task_runs_takes_its_finished_rows_and_leaves_the_rest(pytester):
    pytester.makepyfile(
        sweep_slow="""
        import os, time
        import pytest_psweep as ps

        @ps.sweep(ps.plist("x", range(6)))
        def sweep_slow(pset):
            if pset["x"] == 4:
                open("started", "w").close()
                while not os.path.exists("go"):
                    time.sleep(0.05)
            return {"y": pset["x"]}
        """
    )
    proc = start_session(pytester, "--psweep-shard=0/1", "-p", "no:randomly")
    try:
        wait_for(pytester.path / "started")
        during = merge(pytester.path)
        assert "4 new rows from 1 shard file" in during.stdout
        assert "1 pset started in journals of tasks that may still run" in during.stdout
        assert shard_files(pytester.path) == [".jnl", ".json", ".lock"]  # the task goes on
        (pytester.path / "go").touch()
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    after = merge(pytester.path)
    assert "2 new rows" in after.stdout
    assert "sweep_slow.py::sweep_slow: 6 passed, 0 missing" in after.stdout
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert sorted(db["x"]) == list(range(6)) and db["_pset_id"].is_unique


def test_a_killed_task_s_started_pset_becomes_crashed_with_merge_final(pytester):
    pytester.makepyfile(
        sweep_kill="""
        import os, signal
        import pytest_psweep as ps

        @ps.sweep(ps.plist("x", range(5)))
        def sweep_kill(pset):
            if pset["x"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return {"y": pset["x"]}
        """
    )
    proc = start_session(pytester, "--psweep-shard=0/1", "-p", "no:randomly")
    assert proc.wait(timeout=120) != 0
    stop(proc)
    first = merge(pytester.path)
    assert "2 new rows" in first.stdout and "1 pset started" in first.stdout
    final = merge(pytester.path, "--final")
    assert "1 new row from" in final.stdout
    assert "sweep_kill.py::sweep_kill: 2 passed, 1 crashed, 2 missing" in final.stdout
    assert shard_files(pytester.path) == [".json"]
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert db.set_index("x")["_outcome"].to_dict() == {0: "passed", 1: "passed", 2: "crashed"}


def test_merges_that_race_write_each_row_once(pytester):
    pytester.makepyfile(sweep_a=SWEEP)
    for index in range(4):
        pytester.runpytest_subprocess("--psweep", f"--psweep-shard={index}/4")
    command = [sys.executable, "-m", "pytest_psweep.cli", "merge", str(pytester.path / "calc")]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert len(db) == 20 and db["_pset_id"].is_unique


def test_slurm_array_tasks_share_a_run_id_and_take_their_shard(pytester, monkeypatch):
    pytester.makepyfile(sweep_a=SWEEP)
    env = {"SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    for task in ("1", "2"):
        for name, value in {**env, "SLURM_ARRAY_TASK_ID": task}.items():
            monkeypatch.setenv(name, value)
        pytester.runpytest_subprocess("--psweep", "--psweep-shard=slurm")
    merge(pytester.path)
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert set(db["_shard"]) == {"0/2", "1/2"} and len(db) == 20
    (run_id,) = set(db["_run_id"])
    assert uuid.UUID(run_id).version == 5  # a UUID, the same for every task


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--psweep-shard=3/3"], "*--psweep-shard=3/3: I must be at least 0 and less than N*"),
        (["--psweep-shard=half"], "*--psweep-shard=half: give I/N*"),
        (["--psweep-shard=slurm"], "*SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN*not set*"),
        (["--psweep-run-id=a b"], "*--psweep-run-id='a b': use letters, digits*"),
        (["--psweep-shard=0/2", "--psweep-simulate"], "*--psweep-simulate and --psweep-backup*"),
    ],
)
def test_wrong_shard_options_are_usage_errors(pytester, monkeypatch, args, message):
    pytester.makepyfile(sweep_a=SWEEP)
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest_subprocess("--psweep", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (pytester.path / "calc").exists()


def test_a_dry_run_and_show_name_the_rows_that_wait_in_shards(pytester):
    pytester.makepyfile(sweep_a=SWEEP)
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/2")
    result = pytester.runpytest_subprocess("--psweep", "--collect-only")
    result.stdout.fnmatch_lines(
        ["look ahead: sweep_a.py::sweep_a: * new, * done*", "*left by job-array shards*merge*"]
    )
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "show", str(pytester.path / "calc")],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 1 and "psweep merge" in shown.stderr
    # with a database, show says that shard rows wait beside it
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=1/2")
    merge(pytester.path)
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/2", "--psweep-run-id=again")
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "show", str(pytester.path / "calc")],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0 and "rows]" in shown.stdout
    assert "1 shard files in" in shown.stderr and "psweep merge" in shown.stderr


def test_an_xdist_worker_started_elsewhere_is_an_error_not_stale_rows(pytester, tmp_path):
    pytester.makepyfile(sweep_a=SWEEP)
    elsewhere = tmp_path / "pyexecnetcache"
    elsewhere.mkdir()
    (elsewhere / "sweep_stale.py").write_text(SWEEP.replace("sweep_a", "sweep_stale"))
    result = pytester.runpytest_subprocess(
        "--psweep", "--tx", f"popen//chdir={elsewhere}", "--tx", "popen", "--dist", "load"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [f"*worker gw* runs in {elsewhere}, the controller in {pytester.path}*chdir=*"]
    )
    assert not (pytester.path / "calc" / "results.pk").exists()


def test_a_sweep_with_its_own_calc_dir_leaves_its_shard_rows_there(pytester):
    pytester.makepyfile(
        sweep_own="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("x", range(4)), calc_dir="own/calc")
        def sweep_own(pset):
            return {"y": pset["x"]}
        """
    )
    first = pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/1")
    first.assert_outcomes(passed=4)
    assert shard_files(pytester.path / "own") == [".json", ".shard"]
    # its copy of the sweep module in own/calc/backup_script is never collected
    again = pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/1", "--co", "-q")
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.stdout.fnmatch_lines(["4 tests collected in*"])
    merged = merge(pytester.path / "own")
    assert "sweep_own.py::sweep_own: 4 passed, 0 missing" in merged.stdout
