"""The HPC example study (example_studies/hpc) on a real one-node SLURM cluster that
these tests start on 127.0.0.1: the job array with its dependent merge job, a
resubmitted array, and one allocation whose xdist workers are job steps."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pytest_psweep as ps
from tests.daemons import slurm_cluster, wait_for_job

HPC = Path(__file__).resolve().parent.parent / "example_studies" / "hpc"
PSETS = 4 * 50  # sweep_pi.py's grid
# one cluster for the module, on one xdist worker (--dist loadgroup); not beside the
# sshd tests, which start daemons too
pytestmark = pytest.mark.xdist_group("daemons")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The cluster's client environment, with this interpreter's python3 first on
    PATH (the scripts call python3, as on a cluster with the study's venv active).

    A script that runs sys.executable by its own path, not a symlink to it: a venv's
    python linked from outside the venv finds no pyvenv.cfg and is the base
    interpreter, without pytest-psweep."""
    folder = tmp_path_factory.mktemp("slurm")
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    python3.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python3.chmod(0o755)
    for env in slurm_cluster(folder / "cluster"):
        yield {**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "hpc"
    shutil.copytree(HPC, folder, ignore=shutil.ignore_patterns("calc", "slurm-*.out"))
    return folder


def submit(study: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    """submit.sh as a user runs it: (array job id, merge job id)."""
    done = subprocess.run(
        ["sh", "submit.sh", *args], cwd=study, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()  # "array job 12, merge job 13"
    return words[2].rstrip(","), words[5]


def sbatch(study: Path, env: dict[str, str], *args: str) -> str:
    """Submit a batch job from the study; its job id."""
    done = subprocess.run(
        ["sbatch", "--parsable", *args], cwd=study, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def run_job(study: Path, env: dict[str, str], script: str) -> str:
    """Submit a batch script and wait until it ended with exit code 0: its job id.
    Not ``sbatch --wait``, which polls the job at growing intervals, seconds late."""
    job = sbatch(study, env, script)
    wait_for_job(job, env)
    state = subprocess.run(
        ["scontrol", "show", "job", job], env=env, capture_output=True, text=True
    ).stdout
    output = "".join(path.read_text() for path in study.glob(f"slurm-{job}*.out"))
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, state + output
    return job


def merge_output(study: Path, job: str) -> str:
    return (study / f"slurm-{job}-merge.out").read_text()


def test_an_array_and_its_merge_job_put_every_pset_in_the_database(slurm, study):
    array, merge = submit(study, slurm, "--array=0-3")
    wait_for_job(merge, slurm)
    output = merge_output(study, merge)
    assert f"sweep_pi.py::sweep_pi: {PSETS} passed, 0 missing" in output, output
    db = ps.df_read(study / "calc" / "results.pk")
    assert len(db) == PSETS and db["_pset_hash"].is_unique
    assert set(db["_shard"]) == {"0/4", "1/4", "2/4", "3/4"}
    assert db["_run_id"].nunique() == 1  # one run: the array
    assert set(db["_calc_dir"]) == {str(study / "calc")}
    assert sorted(p.suffix for p in (study / "calc" / "shards").iterdir()) == [".json"] * 4
    for task in range(4):  # each task's log names its shard
        log = (study / f"slurm-{array}_{task}.out").read_text()
        assert f"(of {PSETS}: --psweep-shard={task}/4)" in log


def test_a_resubmitted_array_runs_only_what_the_first_left(slurm, study):
    # the first array's task 1 dies before it collects (say, a node failure)
    (study / "conftest.py").write_text(
        "import os\n\n"
        "def pytest_configure(config):\n"
        "    if os.environ.get('SLURM_ARRAY_TASK_ID') == '1' and not os.path.exists('ok'):\n"
        "        os._exit(3)\n"
    )
    _, merge = submit(study, slurm, "--array=0-3")
    wait_for_job(merge, slurm)
    assert "shards not started: 1 of 4" in merge_output(study, merge)
    first = ps.df_read(study / "calc" / "results.pk")
    assert "1/4" not in set(first["_shard"]) and 0 < len(first) < PSETS

    (study / "ok").touch()
    array, merge = submit(study, slurm, "--array=0-3")  # the same script, again
    wait_for_job(merge, slurm)
    assert f"sweep_pi.py::sweep_pi: {PSETS} passed, 0 missing" in merge_output(study, merge)
    db = ps.df_read(study / "calc" / "results.pk")
    assert len(db) == PSETS and db["_pset_hash"].is_unique  # none ran twice
    assert set(db.loc[~db["_pset_id"].isin(first["_pset_id"]), "_shard"]) == {"1/4"}


def test_one_allocation_runs_xdist_workers_as_job_steps(slurm, study):
    (study / "conftest.py").write_text(
        "import os\n\n"
        "def pytest_psweep_row(row, item):\n"
        "    row['slurm_step'] = os.environ.get('SLURM_STEP_ID')\n"
    )
    run_job(study, slurm, "one_allocation.sbatch")
    db = ps.df_read(study / "calc" / "results.pk")
    assert len(db) == PSETS and (db["_outcome"] == "passed").all()
    # two workers, each its own step of the job (the batch script is no step)
    assert set(db["slurm_step"]) == {"0", "1"}
    assert not (study / "calc" / "shards").exists()


SLOW = """\
import os
import time

import pytest_psweep as ps


@ps.sweep(ps.plist("x", range(16)))
def sweep_slow(pset):
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    open(f"started-{task}", "w").close()
    if os.path.exists(f"hang-{task}"):
        time.sleep(600)  # until scancel
    while os.path.exists("hold") and not os.path.exists("go"):
        time.sleep(0.05)
    time.sleep(0.3)
    return {"y": pset["x"]}
"""


def jobs_array(study: Path, env: dict[str, str], *args: str) -> str:
    """sbatch array.sbatch alone (no merge job): its job id."""
    return sbatch(study, env, *args, "array.sbatch", "sweep_slow.py")


def wait_for_file(path: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.1)


def test_a_merge_job_that_runs_while_a_resubmitted_array_runs_leaves_its_journals(slurm, study):
    """Resubmitting an array while the previous array's merge job (--final) runs:
    that merge finds the new tasks' journals, alive, and leaves them alone."""
    (study / "sweep_slow.py").write_text(SLOW)
    (study / "hold").touch()  # its psets wait for "go": the task runs until then
    array = jobs_array(study, slurm, "--array=0-0")  # one task: a CPU left for the merge
    wait_for_file(study / "started-0")
    (journal,) = (study / "calc" / "shards").glob("*.jnl")
    run_job(study, slurm, "merge.sbatch")  # the previous array's merge job, running now
    (output,) = [p.read_text() for p in study.glob("slurm-*-merge.out")]
    assert "--final left 1 journal of tasks that still run alone" in output, output
    assert "holds its lock" in output and journal.exists()
    (study / "go").touch()
    wait_for_job(array, slurm)
    assert not journal.exists()  # the task ended as tasks do: its .shard is there
    merged = subprocess.run(
        [sys.executable, "-m", "pytest_psweep.cli", "merge", "calc", "--final"],
        cwd=study,
        env=slurm,
        capture_output=True,
        text=True,
    )
    assert "sweep_slow.py::sweep_slow: 16 passed, 0 missing" in merged.stdout, merged.stdout
    db = ps.df_read(study / "calc" / "results.pk")
    assert len(db) == 16 and set(db["_outcome"]) == {"passed"}


def test_a_task_killed_by_scancel_leaves_a_crashed_row_after_the_merge_job(slurm, study):
    (study / "sweep_slow.py").write_text(SLOW)
    (study / "hang-1").touch()
    slurm = {**slurm, "PSWEEP_HEARTBEAT": "0.5"}  # status is as fresh as the last beat
    array = jobs_array(study, slurm, "--array=0-1")
    merge = sbatch(study, slurm, f"--dependency=afterany:{array}", "merge.sbatch")
    wait_for_file(study / "started-1")
    wait_for_job(f"{array}_0", slurm)
    end = time.monotonic() + 60
    while True:  # until a beat after its pset started has put it in the task's tally
        status = subprocess.run(
            [sys.executable, "-m", "pytest_psweep.cli", "status", "calc"],
            cwd=study,
            env=slurm,
            capture_output=True,
            text=True,
        ).stdout
        if "1 running," in status or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert "2 shards: 1 running, 1 ended" in status, status
    owned = sum(1 for x in range(16) if int(ps.pset_hash({"x": x}), 16) % 2 == 1)
    line = f"sweep_slow.py::sweep_slow: {16 - owned} passed, 1 running, {owned - 1} missing"
    assert line in status, status
    subprocess.run(["scancel", f"{array}_1"], env=slurm, check=True)
    wait_for_job(merge, slurm)
    output = merge_output(study, merge)
    line = f"sweep_slow.py::sweep_slow: {16 - owned} passed, 1 crashed, {owned - 1} missing"
    assert line in output, output
    assert "left" not in output  # the killed task's journal was taken, not left
    assert not list((study / "calc" / "shards").glob("*.jnl"))
    db = ps.df_read(study / "calc" / "results.pk")
    assert db.loc[db["_outcome"] == "crashed", "_shard"].tolist() == ["1/2"]
