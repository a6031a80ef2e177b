"""``--psweep-simulate`` and ``--psweep-backup``: which calc dirs they copy, and when
(SPEC §6), through real pytest sessions; split from test_plugin.py."""

from __future__ import annotations

import shutil
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
from tests.test_plugin import MUL

# MUL's rows in a calc dir, for the tests that then choose no sweep of it (-k test_one):
# made once, on one xdist worker (loadgroup); what a test made beside the calc dir is
# removed after it, so that each finds the folder as the others do.
UNCHOSEN = pytest.mark.xdist_group("plugin_unchosen")


@pytest.fixture(scope="module")
def _mul_rows(tmp_path_factory):
    folder = make_study(
        tmp_path_factory.mktemp("unchosen"),
        sweep_mul=MUL,
        test_plain="def test_one():\n    assert True\n",
    )
    run_session(folder, "sweep_mul.py").assert_outcomes(passed=6)
    return folder


@pytest.fixture
def mul_rows(_mul_rows):
    """The folder holding MUL's calc dir; copies made beside it removed afterwards."""
    yield _mul_rows
    for path in _mul_rows.iterdir():
        if path.name.startswith("calc") and path.name != "calc":
            shutil.rmtree(path)


def _calc_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("calc"))


@UNCHOSEN
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_simulate_and_backup_copy_nothing_when_no_sweep_is_chosen(mul_rows, workers):
    assert _calc_dirs(mul_rows) == ["calc"]
    for option in ("--psweep-simulate", "--psweep-backup"):
        result = run_session(mul_rows, option, "-k", "test_one", *workers)
        result.assert_outcomes(passed=1)
    # only the test ran: no simulate copy, no backup of the calc dir
    assert _calc_dirs(mul_rows) == ["calc"]


@UNCHOSEN
@pytest.mark.parametrize(
    "reads",
    [["--psweep-skip-dups"], ["--psweep-compare"]],
    ids=["skip-dups", "compare"],
)
def test_under_xdist_options_that_read_the_database_copy_nothing_either(mul_rows, reads):
    # the workers are handed the done psets or the baseline before any sweep is known
    # to run: read from the calc dir, without the copy that opening it makes
    assert _calc_dirs(mul_rows) == ["calc"]
    for option in ("--psweep-simulate", "--psweep-backup"):
        result = run_session(mul_rows, option, *reads, "-k", "test_one", "-n", "2")
        result.assert_outcomes(passed=1)
    assert _calc_dirs(mul_rows) == ["calc"]
    if reads == ["--psweep-skip-dups"]:  # what was read still holds once sweeps run
        result = run_session(mul_rows, "--psweep-simulate", *reads, "-n", "2")
        result.assert_outcomes(passed=1, skipped=6)


KILLED = """
import pathlib, time
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [0, 1, 2, 3]))
def sweep_killed(pset):
    if pset["a"] == 2 and not pathlib.Path("again").exists():
        pathlib.Path("ready").write_text("x")
        time.sleep(60)
    return {"r": pset["a"]}
"""


def test_under_xdist_simulate_with_skip_dups_skips_the_rows_an_interrupted_session_left(
    pytester,
):
    pytester.makepyfile(sweep_killed=KILLED)
    proc = start_session(pytester, "-p", "no:randomly")
    wait_for(pytester.path / "ready")
    wait_for_journal(pytester.path / "calc", finished=2, running=[2])
    stop(proc)  # SIGKILL: rows 0 and 1 wait in its journal
    (pytester.path / "again").write_text("x")
    result = pytester.runpytest_subprocess(
        "--psweep", "--psweep-simulate", "--psweep-skip-dups", "-n", "2", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2, skipped=2)


PREPARED = """
import time
import pytest
import pytest_psweep as ps

@pytest.fixture
def prepared(pset, pset_dir):
    (pset_dir / "in.txt").write_text(str(pset["a"]))
    time.sleep(0.05)  # the first rows reach the controller while others prepare
    return pset_dir

@ps.sweep(ps.plist("a", list(range(12))))
def sweep_prepared(pset, prepared):
    return {"r": pset["a"]}
"""


def test_under_xdist_the_copies_made_at_the_first_row_keep_the_sessions_folders_apart(
    pytester,
):
    # the workers run psets before the controller hears of the first one and makes
    # the copy: the simulate copy keeps their folders, a backup leaves them out
    pytester.makepyfile(sweep_prepared=PREPARED)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=12)
    calc = pytester.path / "calc"
    before = {p.name for p in calc.iterdir() if not p.name.endswith(".lock")}
    for option, where in (("--psweep-simulate", "calc.simulate"), ("--psweep-backup", "calc")):
        result = pytester.runpytest_subprocess("--psweep", option, "-n", "2", "-p", "no:randomly")
        result.assert_outcomes(passed=12)
        df = ps.df_read(pytester.path / where / "results.pk")
        new = df[df["_run_id"] == df["_run_id"].iloc[-1]]
        for pset_id, a in zip(new["_pset_id"], new["a"]):
            assert (pytester.path / where / pset_id / "in.txt").read_text() == str(a)
    (backup,) = pytester.path.glob("calc_*")
    assert {p.name for p in backup.iterdir()} == before  # as the session found it


OWN_AND_DEFAULT = """
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [0, 1]), calc_dir="own")
def sweep_own(pset):
    return {"r": pset["a"]}

@ps.sweep(ps.plist("b", [0, 1]))
def sweep_default(pset):
    return {"r": pset["b"]}
"""


# OWN_AND_DEFAULT run once with the default options, for the tests that then simulate
# or back up a part of it, each in a copy (one xdist worker: loadgroup).
OWN_STUDY = pytest.mark.xdist_group("plugin_own")


@pytest.fixture(scope="module")
def own_study(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("own"), sweep_two=OWN_AND_DEFAULT)
    run_session(folder).assert_outcomes(passed=4)
    return folder


@OWN_STUDY
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_simulate_and_backup_copy_only_the_calc_dirs_of_the_sweeps_chosen(
    own_study, pytester, workers
):
    copy_study(own_study, pytester.path, "sweep_two.py", "calc", "own")
    for option in ("--psweep-simulate", "--psweep-backup"):
        result = pytester.runpytest_subprocess("--psweep", option, "-k", "sweep_own", *workers)
        result.assert_outcomes(passed=2)
        (line,) = [line for line in result.stdout.lines if line.endswith("rows written")]
        assert "/calc" not in line and line.endswith(
            ": psets 2 passed, 0 failed, 0 skipped; 2 rows written"
        )
    # only sweep_own ran: its calc dir is copied, the default one is not
    names = sorted(p.name for p in pytester.path.iterdir())
    assert [name for name in names if name.startswith("calc")] == ["calc"]
    assert "own.simulate" in names and any(name.startswith("own_") for name in names)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_sweeps_with_calc_dirs_of_their_own_make_no_session_calc_dir(pytester, workers):
    pytester.makepyfile(sweep_two=OWN_AND_DEFAULT)
    result = pytester.runpytest_subprocess("--psweep", "-k", "sweep_own", *workers)
    result.assert_outcomes(passed=2)
    (line,) = [line for line in result.stdout.lines if line.endswith("rows written")]
    assert line.endswith("/own/results.pk: psets 2 passed, 0 failed, 0 skipped; 2 rows written")
    assert not (pytester.path / "calc").exists()  # no row goes there: not made
