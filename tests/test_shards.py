"""Job-array shards and ``psweep merge`` (SPEC §7), end to end: real pytest sessions
(serial and under xdist), real ``psweep merge`` processes (and merges in this process
where a test reads what one merge found), the database they leave."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep import shards
from tests.processes import (
    copy_study,
    make_study,
    psweep_here,
    run_session,
    start_session,
    stop,
    wait_for,
)

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
    """``psweep merge`` of folder's calc dir as a process."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "merge", str(folder / "calc"), *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done


def merge_here(capsys: pytest.CaptureFixture[str], folder: Path, *args: str) -> str:
    """``psweep merge`` of folder's calc dir in this process: what it printed. (The
    command as a process: the split and race tests here, and tests/test_cli.py.)"""
    done = psweep_here(capsys, "merge", str(folder / "calc"), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def shard_files(folder: Path) -> list[str]:
    where = folder / "calc" / "shards"
    return sorted(p.suffix for p in where.iterdir()) if where.is_dir() else []


def three_tasks(folder: Path, *workers: str) -> tuple[Path, list[tuple[pytest.RunResult, bool]]]:
    """SWEEP's three array tasks (run id array-7) in ``folder``, none merged; each
    task's result, and after each one whether the database exists (it must not)."""
    make_study(folder, sweep_a=SWEEP)
    results = []
    for index in range(3):
        result = run_session(
            folder, f"--psweep-shard={index}/3", "--psweep-run-id=array-7", *workers
        )
        results.append((result, (folder / "calc" / "results.pk").exists()))
    return folder, results


# The three tasks run once per variant; the tests of one variant share its xdist group,
# or every xdist worker would run the tasks again.
SERIAL_TASKS = pytest.mark.xdist_group("shards_serial_tasks")
XDIST_TASKS = pytest.mark.xdist_group("shards_xdist_tasks")


@pytest.fixture(scope="module")
def serial_tasks(tmp_path_factory):
    return three_tasks(tmp_path_factory.mktemp("serial_tasks"))


@pytest.fixture(scope="module")
def xdist_tasks(tmp_path_factory):
    return three_tasks(tmp_path_factory.mktemp("xdist_tasks"), "-n", "2")


@pytest.mark.long
@pytest.mark.parametrize(
    "workers",
    [
        pytest.param([], id="serial", marks=SERIAL_TASKS),
        pytest.param(["-n", "2"], id="xdist", marks=XDIST_TASKS),
    ],
)
def test_shards_split_the_psets_and_merge_puts_each_row_in_once(pytester, request, workers):
    folder, results = request.getfixturevalue("xdist_tasks" if workers else "serial_tasks")
    copy_study(folder, pytester.path)
    collected = 0
    for index, (result, database) in enumerate(results):
        outcomes = result.parseoutcomes()
        collected += outcomes.get("passed", 0) + outcomes.get("failed", 0)
        result.stdout.fnmatch_lines(
            [f"*sweep_a.py::sweep_a: * psets (of 20: --psweep-shard={index}/3)*"]
        )
        # a task never writes the database: its rows wait in a file of its own
        assert not database
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


SLURM = {"SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}


@pytest.fixture(scope="module")
def slurm_tasks(tmp_path_factory):
    """SWEEP's two tasks of a SLURM job array (shards 0/2 and 1/2): after the first
    task, after both, and after both and a merge (three folders, each test works in a
    copy of one)."""
    first = make_study(tmp_path_factory.mktemp("first_task"), sweep_a=SWEEP)
    both = tmp_path_factory.mktemp("both_tasks")
    merged = tmp_path_factory.mktemp("merged_tasks")
    for index, (folder, then) in enumerate(((first, both), (both, merged))):
        env = {**os.environ, **SLURM, "SLURM_ARRAY_TASK_ID": str(index + 1)}
        outcomes = run_session(folder, "--psweep-shard=slurm", env=env).parseoutcomes()
        ran = outcomes.get("passed", 0) + outcomes.get("failed", 0)
        assert ran == len(owned(index, 2)), outcomes
        copy_study(folder, then)
    merge(merged)
    return first, both, merged


def owned(index: int, count: int) -> list[int]:
    """SWEEP's psets (their x) that shard index/count runs."""
    return [x for x in range(20) if shards.Shard(index, count).owns(ps.pset_hash({"x": x}))]


def owner_of_3() -> int:
    """The shard of two that runs x=3, SWEEP's failing pset."""
    return next(i for i in range(2) if 3 in owned(i, 2))


SLURM_TASKS = pytest.mark.xdist_group("shards_slurm_tasks")


@SLURM_TASKS
def test_a_resubmitted_shard_with_skip_dups_runs_only_what_is_left(
    pytester, workers, monkeypatch, capsys, slurm_tasks
):
    copy_study(slurm_tasks[1], pytester.path)
    owner = owner_of_3()
    # the rows are not merged yet; the resubmitted task still sees them
    monkeypatch.setenv("FIXED", "1")
    result = pytester.runpytest_subprocess(
        "--psweep", f"--psweep-shard={owner}/2", "--psweep-skip-dups", *workers
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1 and outcomes["skipped"] >= 5
    merge_here(capsys, pytester.path)
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    latest = ps.df_latest(db)
    assert len(latest) == 20 and set(latest["_outcome"]) == {"passed"}


def test_merge_while_a_task_runs_takes_its_finished_rows_and_leaves_the_rest(pytester, capsys):
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
        during = merge_here(capsys, pytester.path)
        assert "4 new rows from 1 shard file" in during
        assert "1 pset started in journals of tasks that may still run" in during
        assert shard_files(pytester.path) == [".jnl", ".json", ".lock"]  # the task goes on
        (pytester.path / "go").touch()
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    after = merge_here(capsys, pytester.path)
    assert "2 new rows" in after
    assert "sweep_slow.py::sweep_slow: 6 passed, 0 missing" in after
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert sorted(db["x"]) == list(range(6)) and db["_pset_id"].is_unique


def test_a_killed_task_s_started_pset_becomes_crashed_with_merge_final(pytester, capsys):
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
    first = merge_here(capsys, pytester.path)
    assert "2 new rows" in first and "1 pset started" in first
    final = merge_here(capsys, pytester.path, "--final")
    assert "1 new row from" in final
    assert "sweep_kill.py::sweep_kill: 2 passed, 1 crashed, 2 missing" in final
    assert shard_files(pytester.path) == [".json"]
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert db.set_index("x")["_outcome"].to_dict() == {0: "passed", 1: "passed", 2: "crashed"}


@SERIAL_TASKS
def test_merges_that_race_write_each_row_once(pytester, serial_tasks):
    copy_study(serial_tasks[0], pytester.path)
    command = [sys.executable, "-m", "pytest_psweep.cli", "merge", str(pytester.path / "calc")]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    db = ps.df_read(pytester.path / "calc" / "results.pk")
    assert len(db) == 20 and db["_pset_id"].is_unique


@SLURM_TASKS
def test_slurm_array_tasks_share_a_run_id_and_take_their_shard(slurm_tasks):
    db = ps.df_read(slurm_tasks[2] / "calc" / "results.pk")
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


@SLURM_TASKS
def test_a_dry_run_and_show_name_the_rows_that_wait_in_shards(pytester, capsys, slurm_tasks):
    copy_study(slurm_tasks[0], pytester.path)  # shard 0/2 ran
    result = pytester.runpytest_subprocess("--psweep", "--collect-only")
    result.stdout.fnmatch_lines(
        ["look ahead: sweep_a.py::sweep_a: * new, * done*", "*left by job-array shards*merge*"]
    )
    shown = psweep_here(capsys, "show", str(pytester.path / "calc"))  # (test_cli: a process)
    assert shown.returncode == 1 and "psweep merge" in shown.stderr
    # with a database, show says that shard rows wait beside it
    shutil.rmtree(pytester.path / "calc")
    copy_study(slurm_tasks[2], pytester.path, "calc")  # shard 1/2 ran too, then merge
    pytester.runpytest_subprocess("--psweep", "--psweep-shard=0/2", "--psweep-run-id=again")
    shown = psweep_here(capsys, "show", str(pytester.path / "calc"))
    assert shown.returncode == 0 and "rows]" in shown.stdout
    assert "psweep: 1 shard file in " in shown.stderr and " holds rows " in shown.stderr
    assert "psweep merge" in shown.stderr


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


def test_a_sweep_with_its_own_calc_dir_leaves_its_shard_rows_there(pytester, capsys):
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
    merged = merge_here(capsys, pytester.path / "own")
    assert "sweep_own.py::sweep_own: 4 passed, 0 missing" in merged
