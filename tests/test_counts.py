"""Counts, messages and folders that agree with what happened (issue 21 items 4, 14,
15, 17): every number the plugin prints matches the database and pytest's own line."""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pytest_psweep as ps
from pytest_psweep import cli
from tests.processes import (
    kill_group,
    start_session,
    stop,
    wait_for,
    wait_for_journal,
    wait_for_marks,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

FOLDERS = """
import pathlib, time
import pytest_psweep as ps

@ps.sweep(ps.plist("a", list(range(6))))
def sweep_files(pset, pset_dir):
    (pset_dir / "out.txt").write_text(str(pset["a"]))
    if pset["a"] == 3:
        pathlib.Path("ready").write_text("x")
        time.sleep(60)
    return {"r": pset["a"]}
"""

FOUR = """
import pytest
import pytest_psweep as ps

@ps.sweep(ps.grid(tol=[0.001, 0.01], n=[1, 2]))
def sweep_four(pset):
    return {"r": pset["tol"] * pset["n"]}

@pytest.mark.skip(reason="not today")
@ps.sweep(ps.plist("b", [1, 2]))
def sweep_skipped(pset):
    return {"r": pset["b"]}
"""


def interrupted(
    pytester: pytest.Pytester, workers: list[str], settled: Callable[[], None] = lambda: None
) -> str:
    """Run the study until it writes ``ready`` and ``settled()`` returns, then Ctrl-C
    it: its output (exit 2)."""
    proc = start_session(pytester, *workers, start_new_session=True, output=True)
    wait_for(pytester.path / "ready")
    settled()
    kill_group(proc, signal.SIGINT)
    assert proc.stdout is not None
    output: str = proc.stdout.read().decode()
    assert stop(proc, sig=0) == 2, output
    return output


def pset_folders(calc: Path) -> set[str]:
    """The names of the pset folders at the top of a calc dir."""
    return {p.name for p in calc.iterdir() if UUID.fullmatch(p.name)}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_interrupted_psets_folder_is_moved_out_of_the_way(pytester, read_db, workers):
    pytester.makepyfile(sweep_files=FOLDERS)
    output = interrupted(pytester, workers)
    df = read_db()
    assert 3 not in set(df["a"])  # interrupted: no row
    calc = pytester.path / "calc"
    folders = pset_folders(calc)
    assert folders <= set(df["_pset_id"])  # no folder in the calc dir without its row
    moved = sorted(int((p / "out.txt").read_text()) for p in (calc / "interrupted").iterdir())
    assert 3 in moved and not set(moved) & set(df["a"])  # interrupted: no row
    # under -n 2 the other worker may be amid a pset at the Ctrl-C: interrupted too
    assert workers or moved == [3]
    psets = f"{len(moved)} interrupted pset{'s' if len(moved) > 1 else ''}"
    assert f"the files of {psets} were moved to" in output
    assert "calc/interrupted" in output


LIVE = """
import pathlib, time
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [0, 1]))
def sweep_live(pset, pset_dir):
    if pset["a"] == 1:
        pathlib.Path("ready").write_text("x")
        while not pathlib.Path("go").exists():
            time.sleep(0.05)
    (pset_dir / "out.txt").write_text(str(pset["a"]))
    return {"r": pset["a"]}
"""


def test_ctrl_c_to_the_xdist_controller_alone_leaves_a_running_psets_folder_alone(
    pytester, read_db
):
    # the workers go on with the psets they run until xdist has stopped them: the
    # folder of one the controller took back is moved only once no row can come
    pytester.makepyfile(sweep_live=LIVE)
    proc = start_session(pytester, "-n", "2", "-p", "no:randomly")
    wait_for(pytester.path / "ready")
    calc = pytester.path / "calc"
    wait_for_journal(calc, finished=1, running=[1])  # a=0's row has come: a=1 runs
    proc.send_signal(signal.SIGINT)
    wait_for_journal(calc, finished=1, running=[])  # the controller took a=1 back
    (pytester.path / "go").write_text("x")
    assert stop(proc, sig=0) == 2
    df = read_db()
    assert list(df["_error"].dropna()) == []  # no FileNotFoundError of a moved pset_dir
    for pset_id, a in zip(df["_pset_id"], df["a"]):
        assert (calc / pset_id / "out.txt").read_text() == str(a)
    folders = pset_folders(calc)
    assert folders == set(df["_pset_id"])


EXITS = """
import pytest
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [0, 1]))
def sweep_exits(pset, pset_dir):
    (pset_dir / "out.txt").write_text(str(pset["a"]))
    if pset["a"] == 1:
        pytest.exit("enough for today", returncode=3)
    return {"r": pset["a"]}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_pset_that_calls_pytest_exit_is_interrupted_not_crashed(pytester, read_db, workers):
    pytester.makepyfile(sweep_exits=EXITS)
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly", *workers)
    assert result.ret == 3
    df = read_db()
    assert list(df["a"]) == [0] and list(df["_outcome"]) == ["passed"]  # a=1: no row
    calc = pytester.path / "calc"
    folders = pset_folders(calc)
    assert folders == set(df["_pset_id"])  # no folder in the calc dir without its row
    moved = list((calc / "interrupted").iterdir())
    assert [(p / "out.txt").read_text() for p in moved] == ["1"]


IN_SETUP = """
import pathlib, time
import pytest
import pytest_psweep as ps

@pytest.fixture
def prepared(pset, pset_dir):
    (pset_dir / "input.txt").write_text(str(pset["a"]))
    if pset["a"] == 2:
        pathlib.Path("ready").write_text("x")
        time.sleep(60)  # a long preparation, interrupted
    if pset["a"] == 1:
        pytest.skip("nothing to prepare")  # skipped after pset_dir was made
    return pset_dir

@ps.sweep(ps.plist("a", [0, 1, 2, 3]))
def sweep_prepared(pset, prepared):
    return {"r": pset["a"]}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_pset_interrupted_or_skipped_in_its_fixtures_leaves_no_folder(pytester, read_db, workers):
    pytester.makepyfile(sweep_prepared=IN_SETUP)
    calc = pytester.path / "calc"

    def settled() -> None:  # under xdist, a=0 and a=1 run on the other worker meanwhile
        wait_for_journal(calc, finished=1)
        wait_for_marks(calc / "skipped", 1)

    output = interrupted(pytester, workers, settled)
    df = read_db()
    assert set(df["a"]) <= {0, 3}  # a=1 skipped, a=2 interrupted in its setup: no rows
    folders = pset_folders(calc)
    assert folders == set(df["_pset_id"])  # no folder in the calc dir without its row
    moved = list((calc / "interrupted").iterdir())
    assert [(p / "input.txt").read_text() for p in moved] == ["2"]
    skipped = list((calc / "skipped").iterdir())
    assert [(p / "input.txt").read_text() for p in skipped] == ["1"]
    if not workers:  # under xdist a worker moved it: the controller was not told
        assert "the files of 1 interrupted pset were moved to" in output


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_selection_that_matches_no_pset_says_so(pytester, workers):
    pytester.makepyfile(sweep_four=FOUR)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-select", "tol > 1", *workers)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        ["psweep: sweep_four.py::sweep_four: 0 psets (of 4: --psweep-select)"]
    )
    assert not (pytester.path / "calc").exists()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_psets_skipped_before_they_ran_are_counted_as_pytest_counts_them(
    pytester, read_db, workers
):
    pytester.makepyfile(sweep_four=FOUR)
    result = pytester.runpytest_subprocess("--psweep", *workers)
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines(["*: psets 4 passed, 0 failed, 2 skipped; 4 rows written"])
    # every pset done: all skipped, and both lines still agree
    result = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups", *workers)
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines(["*: psets 0 passed, 0 failed, 6 skipped; 0 rows written"])
    assert len(read_db()) == 4


XFAIL_AND_ERRORS = """
import pytest
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [1, 2, 3]))
def sweep_x(pset):
    if pset["a"] == 2:
        pytest.xfail("known")
    if pset["a"] == 3:
        raise ValueError("bad")
    return {"r": 1}

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

@ps.sweep(ps.plist("c", [1]))
def sweep_z(pset, broken):
    return {}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_failed_psets_that_pytest_counts_as_xfailed_or_errors_are_said_so(
    pytester, read_db, workers
):
    pytester.makepyfile(sweep_x=XFAIL_AND_ERRORS)
    result = pytester.runpytest_subprocess("--psweep", *workers)
    result.assert_outcomes(passed=1, failed=1, xfailed=1, errors=1)
    # the rows say whether the function succeeded; the line says why pytest differs
    result.stdout.fnmatch_lines(
        ["*: psets 1 passed, 3 failed (1 expected by xfail, 1 in setup), 0 skipped; 4 rows*"]
    )
    assert sorted(read_db()["_outcome"]) == ["failed", "failed", "failed", "passed"]


def test_a_pset_mark_with_a_float_names_the_selection_that_works(pytester):
    pytester.makepyfile(sweep_four=FOUR)
    result = pytester.runpytest_subprocess("--psweep", "-m", "pset(tol=0.001, n=1)")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "psweep: -m 'pset(...)' takes ints, strings, bools and None only; select psets "
            'by any value with --psweep-select "tol == 0.001 and n == 1"'
        ]
    )
    result = pytester.runpytest_subprocess("--psweep", "--psweep-select", "tol == 0.001 and n == 1")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_second_ctrl_c_makes_no_interrupted_pset_a_crashed_one(pytester, workers):
    """An impatient second Ctrl-C ends the process while pytest still formats the
    first: the running psets' started records are taken back before that."""
    pytester.makepyfile(sweep_files=FOLDERS)
    proc = start_session(pytester, *workers, start_new_session=True)
    wait_for(pytester.path / "ready")
    kill_group(proc, signal.SIGINT)
    time.sleep(0.05)  # the second press, as a person makes it
    with contextlib.suppress(ProcessLookupError):
        kill_group(proc, signal.SIGINT)
    stop(proc, sig=0)
    # psweep recover, in this process (the CLI's own process is tested in test_cli)
    assert cli.main(["recover", str(pytester.path / "calc")]) == 0
    df = ps.df_read(pytester.path / "calc" / "results.pk")
    assert set(df["_outcome"]) == {"passed"}  # pset 3 was interrupted: no crashed row
    assert 3 not in set(df["a"])


XFAIL_IN_SETUP_AND_TEARDOWN = """
import pytest
import pytest_psweep as ps

@pytest.fixture
def prepared(pset):
    if pset["a"] == 1:
        pytest.xfail("known in setup")
    yield
    if pset["a"] == 2:
        raise RuntimeError("teardown broke")

@ps.sweep(ps.plist("a", [0, 1, 2]))
def sweep_x(pset, prepared):
    return {"r": 1}

@pytest.mark.xfail(run=False, reason="not run")
@ps.sweep(ps.plist("b", [1]))
def sweep_not_run(pset):
    return {"r": 1}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_psets_xfailed_before_they_ran_or_with_a_teardown_error_are_said_so(
    pytester, read_db, workers
):
    pytester.makepyfile(sweep_x=XFAIL_IN_SETUP_AND_TEARDOWN)
    result = pytester.runpytest_subprocess("--psweep", *workers)
    result.assert_outcomes(passed=2, xfailed=2, errors=1)
    # pytest counts 2 xfailed and 1 error more than the psets: the line says why
    result.stdout.fnmatch_lines(
        [
            "*: psets 2 passed, 0 failed, 2 skipped (2 expected by xfail) "
            "(and 1 error in teardown); 2 rows written"
        ]
    )
    assert sorted(read_db()["a"]) == [0, 2]
