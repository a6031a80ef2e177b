"""`pytest --psweep` end to end (SPEC §3, §5, §6), through pytester subprocess runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import pytest_psweep as ps
from tests.processes import (
    make_study,
    run_session,
    start_session,
    stop,
    wait_for,
    wait_for_journal,
)

MUL = """
    import pytest_psweep as ps

    @ps.sweep(ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", [77, 88])))
    def sweep_mul(pset, tmp_path):
        assert pset["a"] > 0
        return {"result": pset["a"] * pset["b"]}
"""


def test_help_shows_every_option(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*parameter sweeps (pytest-psweep)*"])
    for option in (
        "--psweep ",
        "--psweep-calc-dir=DIR",
        "--psweep-simulate",
        "--psweep-backup",
        "--psweep-skip-dups",
        "--psweep-compare*",
        "--psweep-baseline=PATH*",
        "--psweep-select=EXPR*",
        "--psweep-lock-timeout=SECONDS",
        "--psweep-shard=I/N|slurm",
        "--psweep-run-id=ID",
    ):
        result.stdout.fnmatch_lines([f"*{option}*"])
    for ini in (
        "psweep (bool)",
        "psweep_calc_dir",
        "psweep_simulate (bool)",
        "psweep_backup (bool)",
        "psweep_skip_dups (bool)",
        "psweep_compare (bool)",
        "psweep_baseline",
        "psweep_select",
        "psweep_lock_timeout",
    ):
        result.stdout.fnmatch_lines([f"*{ini}*"])


# One session of MUL for the tests that ran it with the default options, on one xdist
# worker (loadgroup): warnings about returned values raised, as one of them asks.
MUL_STUDY = pytest.mark.xdist_group("plugin_mul")


@pytest.fixture(scope="module")
def mul_study(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("mul"), sweep_mul=MUL)
    result = run_session(folder, "-W", "error::pytest.PytestReturnNotNoneWarning")
    return folder, result


@MUL_STUDY
def test_sweep_runs_one_item_per_pset_and_writes_rows(mul_study):
    folder, result = mul_study
    result.assert_outcomes(passed=6)
    df = ps.df_read(folder / "calc" / "results.pk")
    assert df[["a", "b", "result"]].values.tolist() == [
        [1, 77, 77],
        [1, 88, 88],
        [2, 77, 154],
        [2, 88, 176],
        [3, 77, 231],
        [3, 88, 264],
    ]
    assert set(df["_outcome"]) == {"passed"}
    assert set(df["_sweep"]) == {"sweep_mul.py::sweep_mul"}
    assert df["_run_id"].nunique() == 1
    assert df["_error"].isna().all()
    assert list(df["_pset_seq"]) == list(range(6))


def test_plain_pytest_leaves_sweeps_alone(pytester):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.makepyfile(
        test_plain="""
        import pytest_psweep as ps

        def test_one():
            pass

        @ps.sweep([{"a": 1}])
        def sweep_in_test_module(pset):
            raise AssertionError("must not run without --psweep")
    """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "calc").exists()


def test_ids_are_readable_stable_and_safe(pytester):
    pytester.makepyfile(
        sweep_ids="""
        import numpy as np
        import pytest_psweep as ps

        @ps.sweep([{"a": 1, "b": "x"}, {"a": 1.5, "b": None}, {"a": True, "b": "a b/c::d[0]"},
                   {"a": [1, 2], "b": np.arange(2)}, {"a": 1, "b": "x"}])
        def sweep_ids(pset):
            pass
    """
    )
    first = pytester.runpytest_subprocess("--psweep", "--collect-only", "-q")
    first.stdout.fnmatch_lines(
        [
            "sweep_ids.py::sweep_ids[[]a=1-b=x-0[]]",
            "sweep_ids.py::sweep_ids[[]a=1.5-b=None[]]",
            "sweep_ids.py::sweep_ids[[]a=True-b=#*[]]",
            "sweep_ids.py::sweep_ids[[]a=#*-b=#*[]]",
            "sweep_ids.py::sweep_ids[[]a=1-b=x-1[]]",
        ]
    )
    second = pytester.runpytest_subprocess("--psweep", "--collect-only", "-q")
    ids = [line for line in first.outlines if line.startswith("sweep_ids.py::")]
    assert len(ids) == 5 and "::" not in "".join(i.split("::", 1)[1] for i in ids)
    assert ids == [line for line in second.outlines if line.startswith("sweep_ids.py::")]


def test_psweep_and_pset_marks_select(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.makepyfile(test_plain="def test_one(): pass")
    pytester.runpytest_subprocess("--psweep", "-m", "not psweep").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--psweep", "-m", "psweep and pset(a=2)")
    result.assert_outcomes(passed=2)
    assert sorted(read_db()["b"]) == [77, 88]
    assert set(read_db()["a"]) == {2}


def test_sweep_without_pset_argument_is_a_collection_error(pytester):
    pytester.makepyfile(
        sweep_noarg="""
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_noarg(tmp_path):
            pass
    """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.stdout.fnmatch_lines(
        ["*sweep sweep_noarg.py::sweep_noarg: a sweep function takes the argument 'pset'*"]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_last_failed_and_deselect_use_stable_ids(pytester, read_db):
    pytester.makepyfile(
        sweep_lf="""
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2, 3]))
        def sweep_lf(pset):
            assert pset["a"] != 2
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=2, failed=1)
    pytester.runpytest_subprocess("--psweep", "--lf").assert_outcomes(failed=1)
    result = pytester.runpytest_subprocess(
        "--psweep", "--deselect", "sweep_lf.py::sweep_lf[a=2]", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    assert list(read_db()["a"]) == [1, 2, 3, 2, 1, 3]


def test_collect_only_writes_nothing(pytester):
    pytester.makepyfile(sweep_mul=MUL)
    result = pytester.runpytest_subprocess("--psweep", "--collect-only")
    result.stdout.fnmatch_lines(["*6 tests collected*"])
    assert not (pytester.path / "calc").exists()


@MUL_STUDY
def test_no_return_not_none_warning(mul_study):
    _, result = mul_study
    result.assert_outcomes(passed=6)
    result.stdout.no_fnmatch_line("*PytestReturnNotNoneWarning*")


def test_simulate_does_not_call_functions_or_touch_calc(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=6)
    before = (pytester.path / "calc" / "results.pk").read_bytes()
    pytester.makepyfile(
        sweep_mul=MUL.replace("assert pset", "raise SystemError\n        assert pset")
    )
    result = pytester.runpytest_subprocess("--psweep", "--psweep-simulate")
    result.assert_outcomes(passed=6)
    assert (pytester.path / "calc" / "results.pk").read_bytes() == before
    sim = read_db("calc.simulate")
    assert len(sim) == 12
    assert sim["result"].iloc[6:].isna().all()
    assert set(sim["_calc_dir"].iloc[6:]) == {str(pytester.path / "calc.simulate")}


def test_backup_copies_calc_dir_once(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep")
    first = read_db()
    pytester.runpytest_subprocess("--psweep", "--psweep-backup", "-n", "2")
    stamp = first["_time_utc"].max().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    backups = [p.name for p in pytester.path.iterdir() if p.name.startswith("calc_")]
    assert backups == [f"calc_{stamp}"]
    assert len(read_db(f"calc_{stamp}")) == 6
    assert len(read_db()) == 12


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


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_simulate_and_backup_copy_only_the_calc_dirs_of_the_sweeps_chosen(pytester, workers):
    pytester.makepyfile(sweep_two=OWN_AND_DEFAULT)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=4)
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


def test_calc_dir_option_is_relative_to_rootdir(pytester):
    pytester.makeini("[pytest]\n")
    sub = pytester.mkpydir("studies")
    (sub / "sweep_mul.py").write_text(MUL.replace("\n    ", "\n"))
    result = pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=out/db", "studies")
    result.assert_outcomes(passed=6)
    assert (pytester.path / "out" / "db" / "results.pk").exists()


def test_ini_keys_work_like_options(pytester):
    pytester.makeini("[pytest]\npsweep = true\npsweep_calc_dir = results_here\n")
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess().assert_outcomes(passed=6)
    assert (pytester.path / "results_here" / "results.pk").exists()


@MUL_STUDY
def test_sweep_module_source_is_backed_up(mul_study):
    folder, result = mul_study
    result.assert_outcomes(passed=6)
    run_id = ps.df_read(folder / "calc" / "results.pk")["_run_id"].iloc[0]
    copy = folder / "calc" / "backup_script" / run_id / "sweep_mul.py"
    assert copy.read_text() == (folder / "sweep_mul.py").read_text()
    # the copies are never collected again: a simulation (of the same calc dir, which
    # it leaves as it is for the other tests) collects the original only
    run_session(folder, "--psweep-simulate").assert_outcomes(passed=6)


def test_header_and_summary(pytester):
    pytester.makepyfile(sweep_mul=MUL.replace('"a", [1, 2, 3]', '"a", [1, 2, -3]'))
    result = pytester.runpytest_subprocess("--psweep")
    result.stdout.fnmatch_lines(
        [
            "psweep: run *, database */calc/results.pk",
            "psweep: sweep_mul.py::sweep_mul: 6 psets",
            "sweep_mul.py ....FF*",
            "*= psweep =*",
            "*/calc/results.pk: psets 4 passed, 2 failed, 0 skipped; 6 rows written",
        ]
    )
    # no blank line between the section's header and its first line
    section = next(i for i, line in enumerate(result.outlines) if "= psweep =" in line)
    assert result.outlines[section + 1].endswith("6 rows written")


def test_works_with_xdist_disabled(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep", "-p", "no:xdist").assert_outcomes(passed=6)
    assert len(read_db()) == 6


def test_one_run_id_per_session_made_on_the_controller(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep", "-n", "2")
    pytester.runpytest_subprocess("--psweep")
    df = read_db()
    assert df.groupby("_run_id").size().tolist() == [6, 6]
    assert list(df["_run_seq"]) == [0] * 6 + [1] * 6


HOOKS_CONFTEST = """
    import json, os

    def pytest_psweep_row(row, item):
        workerinput = getattr(item.config, "workerinput", None)
        row["where"] = workerinput["workerid"] if workerinput else "controller"
        row["item_name"] = item.name
        row["result"] = row.get("result", 0) + 1000

    def pytest_psweep_finish(database, new_rows, calc_dir):
        (calc_dir / "finish.json").write_text(json.dumps({
            "total": len(database), "new": len(new_rows), "calc_dir": str(calc_dir),
            "db_exists": (calc_dir / "results.pk").exists(),
        }))
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_row_and_finish_hooks_from_conftest(pytester, read_db, workers):
    pytester.makeconftest(HOOKS_CONFTEST)
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=6)
    pytester.runpytest_subprocess("--psweep", *workers).assert_outcomes(passed=6)
    df = read_db()
    assert list(df["result"].iloc[:6]) == [
        77 + 1000,
        88 + 1000,
        154 + 1000,
        176 + 1000,
        231 + 1000,
        264 + 1000,
    ]
    assert df["item_name"].iloc[0] == "sweep_mul[a=1-b=77]"
    where = set(df["where"].iloc[6:])
    if workers:  # the row hook runs where the row is made: in the workers
        assert where and where <= {"gw0", "gw1"}
    else:
        assert where == {"controller"}
    finish = json.loads((pytester.path / "calc" / "finish.json").read_text())
    assert finish == {
        "total": 12,
        "new": 6,
        "calc_dir": str(pytester.path / "calc"),
        "db_exists": True,
    }
