"""Resumable studies and regression sweeps: --psweep-skip-dups, --psweep-compare,
look-ahead and provenance (issue: regression sweeps and resumable studies)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_psweep as ps
from tests.processes import (
    copy_study,
    make_study,
    run_session,
    start_session,
    stop,
    wait_for,
    wait_for_journal,
)

GRID = """
    import math
    import numpy as np
    import pytest_psweep as ps

    SCALE = {scale}

    @ps.sweep(ps.grid(a={values}){extra})
    def sweep_grid(pset):
        assert pset["a"] != {bad}
        return {{"r": pset["a"] * SCALE, "arr": np.arange(3) * SCALE, "nan": math.nan}}
"""


def grid_source(
    values: str = "[1, 2]", scale: str = "1.0", bad: str = "-1", extra: str = ""
) -> str:
    return GRID.format(values=values, scale=scale, bad=bad, extra=extra)


def grid(pytester: pytest.Pytester, **changes: str) -> None:
    pytester.makepyfile(sweep_grid=grid_source(**changes))


# Studies that several tests start from, each run once (a module fixture) and copied
# into each test's own folder (copy_study): the tests that share one share its
# xdist_group, or every xdist worker would run it again.


@pytest.fixture(scope="module")
def grid_done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRID with a=1, 2, both passed, in calc/, and a plain test beside it."""
    folder = make_study(
        tmp_path_factory.mktemp("grid_done"),
        sweep_grid=grid_source(),
        test_other="def test_other(): pass",
    )
    run_session(folder).assert_outcomes(passed=3)
    return folder


@pytest.fixture(scope="module")
def grid_one_failed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRID with a=1, 2, 3 in calc/, a=2 failed."""
    folder = make_study(
        tmp_path_factory.mktemp("grid_one_failed"),
        sweep_grid=grid_source(values="[1, 2, 3]", bad="2"),
    )
    run_session(folder).assert_outcomes(passed=2, failed=1)
    return folder


@pytest.mark.long
@pytest.mark.xdist_group("grid_one_failed")
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_skip_dups_runs_only_new_and_failed_psets(pytester, read_db, grid_one_failed, workers):
    copy_study(grid_one_failed, pytester.path, "calc")
    grid(pytester, values="[1, 2, 3, 4]")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups", "-rs", *workers)
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED *already in database*"])
    df = read_db()
    second = df[df["_run_seq"] == 1]
    assert sorted(second["a"]) == [2, 4]  # the failed one again, and the new one
    assert len(df) == 5


def test_skip_dups_resumes_a_killed_study(pytester, read_db, monkeypatch):
    pytester.makepyfile(
        sweep_slow="""
        import os, pathlib, time
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=list(range(8))))
        def sweep_slow(pset):
            if pset["a"] == 3 and not os.environ.get("RESUME"):
                pathlib.Path("ready").write_text("x")
                time.sleep(30)
            return {"r": pset["a"]}
    """
    )
    proc = start_session(pytester)
    wait_for(pytester.path / "ready")
    # the session has journaled the rows of a=0..2 and the start of a=3
    wait_for_journal(pytester.path / "calc", finished=3, running=[3])
    stop(proc)
    # the dry run counts the rows that wait in the killed session's journal
    result = pytester.runpytest_subprocess("--psweep", "--co")
    result.stdout.fnmatch_lines(
        [
            "look ahead: sweep_slow.py::sweep_slow: 5 new, 3 done, 0 failed before, 0 other code",
            "(4 of the rows counted wait in */calc/journal, left by an interrupted run: the "
            "next run merges them, or 'psweep recover */calc')",
        ]
    )
    monkeypatch.setenv("RESUME", "1")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups")
    result.assert_outcomes(passed=5, skipped=3)
    df = read_db()
    # the pset that was running when the session died has a crashed row, and is not
    # done: the resumed session ran it again
    assert df.groupby("_outcome")["a"].apply(sorted).to_dict() == {
        "crashed": [3],
        "passed": list(range(8)),
    }


@pytest.mark.xdist_group("grid_done")
def test_compare_passes_when_results_agree_and_counts_new(pytester, grid_done):
    copy_study(grid_done, pytester.path, "calc")
    grid(pytester, values="[1, 2, 3]", scale="(1.0 + 1e-12)")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["compared with */calc/results.pk: 2 same, 0 differ, 1 new"])


@pytest.mark.xdist_group("grid_done")
def test_compare_fails_drifted_pset_with_a_table_and_keeps_rows(pytester, read_db, grid_done):
    copy_study(grid_done, pytester.path, "calc")
    grid(pytester, scale="1.001")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*results differ from baseline */calc/results.pk * in r, arr",
            "key *baseline *new *abs diff *rel diff",
            "r *1.0 *1.001 *0.001 *0.001",
            "arr *array(*) *array(*) *0.002 *0.001",
        ]
    )
    # the summary: per sweep and key, how many psets differ and by how much at most
    result.stdout.fnmatch_lines(
        [
            "compared with */calc/results.pk: 0 same, 2 differ, 0 new",
            "  sweep_grid.py::sweep_grid: arr: 2 psets differ, largest abs diff 0.002, rel*",
            "  sweep_grid.py::sweep_grid: r: 2 psets differ, largest abs diff 0.002, rel*",
        ]
    )
    df = read_db()
    assert len(df) == 4
    assert list(df["_outcome"]) == ["passed", "passed", "failed", "failed"]
    assert df["_error"].iloc[2].startswith("compare: results differ")
    # the drifted rows are failed, so the baseline stays the last good result
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    result.assert_outcomes(failed=2)


@pytest.mark.xdist_group("grid_done")
def test_compare_takes_no_positional_argument_away(pytester, grid_done):
    # the study ran with test_other.py beside it (grid_done: 3 passed)
    copy_study(grid_done, pytester.path, "sweep_grid.py", "test_other.py", "calc")
    # sweep_grid.py is what to run, not a baseline
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare", "sweep_grid.py")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["compared with */calc/results.pk: 2 same, 0 differ, 0 new"])
    # a baseline alone turns regression mode on
    result = pytester.runpytest_subprocess("--psweep", "--psweep-baseline=calc")
    result.stdout.fnmatch_lines(["compared with */calc/results.pk: 2 same, 0 differ, 0 new"])


def outcomes_of_last_run(calc: Path) -> dict[str, list[str]]:
    """Per sweep, the outcomes of the psets the last session wrote into calc/."""
    df = ps.df_read(calc / "results.pk")
    last = df[df["_run_seq"] == df["_run_seq"].max()]
    outcomes: dict[str, list[str]] = last.groupby("_sweep")["_outcome"].apply(sorted).to_dict()
    return outcomes


@pytest.mark.long
def test_compare_tolerances_from_ini_and_per_sweep(pytester):
    # GRID three times: no tolerance of its own, its own rtol, its own atol
    own = {"sweep_grid": "", "sweep_rtol": ", rtol=1e-6", "sweep_atol": ", rtol=0, atol=0.01"}

    def study(scale: str) -> None:
        for name, extra in own.items():
            pytester.makepyfile(**{name: grid_source(scale=scale, extra=extra)})

    study("1.0")
    pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=base").assert_outcomes(passed=6)
    against_base = ("--psweep", "--psweep-baseline=base/results.pk")
    study("1.001")
    pytester.runpytest_subprocess(*against_base).assert_outcomes(passed=2, failed=4)
    assert outcomes_of_last_run(pytester.path / "calc") == {
        "sweep_grid.py::sweep_grid": ["failed", "failed"],  # default rtol
        "sweep_rtol.py::sweep_grid": ["failed", "failed"],
        "sweep_atol.py::sweep_grid": ["passed", "passed"],
    }
    pytester.makeini("[pytest]\npsweep_rtol = 0.01\n")
    pytester.runpytest_subprocess(*against_base).assert_outcomes(passed=4, failed=2)
    assert outcomes_of_last_run(pytester.path / "calc") == {
        "sweep_grid.py::sweep_grid": ["passed", "passed"],  # the ini's rtol
        "sweep_rtol.py::sweep_grid": ["failed", "failed"],  # the sweep's own beats the ini
        "sweep_atol.py::sweep_grid": ["passed", "passed"],
    }


def test_compare_missing_and_new_keys_are_differences(pytester, monkeypatch):
    pytester.makepyfile(
        sweep_keys="""
        import os
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1]))
        def sweep_keys(pset):
            if os.environ.get("CHANGED"):
                return {"r": 1, "s": 2}
            return {"r": 1, "t": 3}
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=1)
    monkeypatch.setenv("CHANGED", "1")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["s *<missing> *2*", "t *3 *<missing>*"])


@pytest.mark.xdist_group("grid_done")
def test_committed_baseline_works_from_any_working_directory(pytester, read_db, grid_done):
    copy_study(grid_done, pytester.path, "sweep_grid.py")
    pytester.makeini("[pytest]\n")
    baseline = pytester.path / "tests" / "baselines" / "results.pk"
    baseline.parent.mkdir(parents=True)
    shutil.copy(grid_done / "calc" / "results.pk", baseline)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--psweep",
            "--psweep-baseline=tests/baselines/results.pk",
            str(pytester.path / "sweep_grid.py"),
        ],
        cwd=baseline.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    assert "2 same, 0 differ, 0 new" in result.stdout
    assert len(read_db()) == 2  # the rows go to the calc dir, the baseline is untouched


def test_compare_with_missing_baseline_file_is_a_usage_error(pytester):
    grid(pytester)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-baseline=nope/results.pk")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*database */nope/results.pk does not exist*"])


@pytest.mark.long
@pytest.mark.xdist_group("grid_one_failed")
def test_look_ahead_with_collect_only_and_simulate(pytester, read_db, grid_one_failed):
    copy_study(grid_one_failed, pytester.path, "calc")
    grid(pytester, values="[1, 2, 3, 4]")  # a=1, 3 done, 2 failed before, 4 new
    result = pytester.runpytest_subprocess("--psweep", "--collect-only")
    result.stdout.fnmatch_lines(
        ["look ahead: sweep_grid.py::sweep_grid: 1 new, 0 done, 1 failed before, 2 other code"]
    )
    # same code as the done rows: restore the source they ran with, then simulate
    grid(pytester, values="[1, 2, 3, 4]", bad="2")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-simulate", "-n", "2")
    result.stdout.fnmatch_lines(
        ["look ahead: sweep_grid.py::sweep_grid: 1 new, 2 done, 1 failed before, 0 other code"]
    )
    assert len(read_db()) == 3


@pytest.mark.xdist_group("grid_done")
def test_provenance_in_every_row(pytester, read_db, grid_done):
    git = shutil.which("git")
    copy_study(grid_done, pytester.path, "sweep_grid.py", "calc")  # ran outside git
    outside = read_db()
    assert outside["_git_commit"].isna().all() and outside["_git_dirty"].isna().all()
    assert "pytest=" in outside["_versions"].iloc[0] and "pandas=" in outside["_versions"].iloc[0]
    assert outside["_code_hash"].nunique() == 1
    if git is None:
        pytest.fail("git is needed for this test")
    for args in (
        ["init", "-q"],
        ["add", "sweep_grid.py"],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x"],
    ):
        subprocess.run([git, *args], cwd=pytester.path, check=True)
    commit = subprocess.run(
        [git, "rev-parse", "HEAD"], cwd=pytester.path, text=True, capture_output=True, check=True
    ).stdout.strip()
    pytester.runpytest_subprocess("--psweep", "-n", "2").assert_outcomes(passed=2)
    grid(pytester, bad="5")  # new code in the sweep function
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=2)
    df = read_db()
    assert list(df["_git_commit"].iloc[2:]) == [commit] * 4
    assert list(df["_git_dirty"].iloc[2:]) == [False, False, True, True]
    assert df["_code_hash"].iloc[3] == outside["_code_hash"].iloc[0]
    assert df["_code_hash"].iloc[4] != outside["_code_hash"].iloc[0]


@pytest.mark.long
@pytest.mark.xdist_group("grid_done")
def test_compare_with_a_json_baseline_kept_in_git(pytester, grid_done):
    copy_study(grid_done, pytester.path, "sweep_grid.py", "calc")
    psweep = shutil.which("psweep")
    assert psweep is not None, "the psweep command is not installed (pip install -e .)"
    subprocess.run([psweep, "export", "calc", "baseline.json"], cwd=pytester.path, check=True)
    lines = (pytester.path / "baseline.json").read_text().splitlines()
    assert lines[0].startswith('{"columns": ') and len(lines) == 2 + 2  # a row a line
    result = pytester.runpytest_subprocess("--psweep", "--psweep-baseline=baseline.json", "-n", "2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["compared with */baseline.json: 2 same, 0 differ, 0 new"])
    grid(pytester, scale="1.5")
    result = pytester.runpytest_subprocess("--psweep", "--psweep-baseline=baseline.json")
    result.assert_outcomes(failed=2)
