"""The HPC example study (example_studies/hpc) on a real one-node SLURM cluster that
these tests start on 127.0.0.1: the job array with its dependent merge job, a
resubmitted array, and one allocation whose xdist workers are job steps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daemons import slurm_cluster, wait_for_job

import pytest_psweep as ps

HPC = Path(__file__).resolve().parent.parent / "example_studies" / "hpc"
PSETS = 4 * 50  # sweep_pi.py's grid


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The cluster's client environment, with this interpreter's python3 first on
    PATH (the scripts call python3, as on a cluster with the study's venv active)."""
    folder = tmp_path_factory.mktemp("slurm")
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
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
    done = subprocess.run(
        ["sbatch", "--wait", "one_allocation.sbatch"],
        cwd=study,
        env=slurm,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    db = ps.df_read(study / "calc" / "results.pk")
    assert len(db) == PSETS and (db["_outcome"] == "passed").all()
    # two workers, each its own step of the job (the batch script is no step)
    assert set(db["slurm_step"]) == {"0", "1"}
    assert not (study / "calc" / "shards").exists()
