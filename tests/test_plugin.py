"""`pytest --psweep` end to end (SPEC §3, §5, §6), through pytester subprocess runs."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

import pytest_psweep as ps
from tests.processes import start_session, stop, wait_for, wait_for_journal

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


def test_sweep_runs_one_item_per_pset_and_writes_rows(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=6)
    df = read_db()
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


def test_sweeps_in_test_modules_and_sweep_files_run_beside_tests(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.makepyfile(
        test_plain="""
        import pytest_psweep as ps

        def test_one():
            pass

        @ps.sweep(ps.grid(c=[5, 6]))
        def sweep_in_test_module(pset):
            return {"double": pset["c"] * 2}
    """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=9)
    df = read_db()
    assert df.groupby("_sweep").size().to_dict() == {
        "sweep_mul.py::sweep_mul": 6,
        "test_plain.py::sweep_in_test_module": 2,
    }


def test_sweep_as_a_method_of_a_test_class(pytester, read_db):
    pytester.makepyfile(
        test_study="""
        import pytest
        import pytest_psweep as ps

        class TestStudy:
            factor = 3

            @pytest.fixture
            def offset(self):
                return 1

            @ps.sweep(ps.plist("a", [1, 2]))
            def sweep_scaled(self, pset, offset):
                return {"r": pset["a"] * self.factor + offset}
    """
    )
    result = pytester.runpytest_subprocess("--psweep", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_study.py::TestStudy::sweep_scaled[[]a=1[]] PASSED*"])
    df = read_db()
    assert list(df["r"]) == [4, 7]
    assert set(df["_sweep"]) == {"test_study.py::TestStudy::sweep_scaled"}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_sweep_with_a_further_parametrize_runs_each_pset_per_case(pytester, read_db, workers):
    # the items of one pset share its dict: what one item's function does to it
    # must not reach the next item, and each item gets a row of its own
    pytester.makepyfile(
        sweep_solvers="""
        import pytest
        import pytest_psweep as ps

        @pytest.mark.parametrize("solver", ["fast", "exact"])
        @ps.sweep(ps.plist("a", [1, 2]))
        def sweep_solve(pset, solver):
            assert set(pset) - {"a"} == {
                "_run_id", "_pset_id", "_pset_hash", "_calc_dir", "_time_utc"
            }, sorted(pset)
            pset["scratch"] = solver
            a = pset.pop("a")
            return {"solver": solver, "r": a * (2 if solver == "fast" else 3)}
    """
    )
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly", *workers)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*psweep: sweep_solvers.py::sweep_solve: 2 psets × 2 cases"])
    df = read_db()
    rows = sorted(zip(df["solver"], df["r"]))
    assert rows == [("exact", 3), ("exact", 6), ("fast", 2), ("fast", 4)]
    assert df["_pset_id"].nunique() == 4
    # the two cases of a pset share its hash and differ in the case's
    assert df.groupby("_pset_hash")["_case_hash"].nunique().tolist() == [2, 2]
    # the row is what the function left in the pset, merged with what it returned
    assert set(df["scratch"]) == {"fast", "exact"}


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


def test_fixtures_of_any_scope_beside_pset(pytester, read_db):
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def mesh():
            return {"cells": 10}

        @pytest.fixture
        def scaled(pset):
            # fixtures get the same pset, book-keeping already set
            return pset["a"] * 100, pset["_pset_id"]
    """)
    pytester.makepyfile(
        sweep_fix="""
        import pytest
        import pytest_psweep as ps

        @pytest.fixture(scope="module")
        def offset():
            return 7

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_fix(mesh, offset, scaled, pset, tmp_path, request):
            (tmp_path / "f").write_text("x")
            return {"r": mesh["cells"] + offset + scaled[0], "node": request.node.name,
                    "fixture_pset_id": scaled[1]}
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=2)
    df = read_db()
    assert list(df["r"]) == [117, 217]
    assert list(df["node"]) == ["sweep_fix[a=1]", "sweep_fix[a=2]"]
    assert list(df["fixture_pset_id"]) == list(df["_pset_id"])


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


def test_marks_on_the_function_apply_per_pset(pytester, read_db):
    pytester.makepyfile(
        sweep_marks="""
        import pytest
        import pytest_psweep as ps

        @pytest.mark.skip(reason="not today")
        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_skipped(pset):
            raise AssertionError

        @pytest.mark.xfail(reason="known bad", strict=False)
        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_xfail(pset):
            assert pset["a"] == 2
            return {"ok": True}

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_skip_inside(pset):
            if pset["a"] == 1:
                pytest.skip("a=1 is not interesting")
            return {"ok": True}
    """
    )
    result = pytester.runpytest_subprocess("--psweep", "-rsx")
    result.assert_outcomes(skipped=3, xfailed=1, xpassed=1, passed=1)
    df = read_db().set_index("_sweep")
    # skipped before they ran: no row; skipped inside the function: a row
    assert "sweep_marks.py::sweep_skipped" not in df.index
    xfail = df.loc["sweep_marks.py::sweep_xfail"]
    assert list(xfail["_outcome"]) == ["failed", "passed"]
    assert xfail["_error"].iloc[0].startswith("AssertionError")
    inside = df.loc["sweep_marks.py::sweep_skip_inside"]
    assert list(inside["_outcome"]) == ["skipped", "passed"]


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


def test_no_return_not_none_warning(pytester):
    pytester.makepyfile(sweep_mul=MUL)
    result = pytester.runpytest_subprocess(
        "--psweep", "-W", "error::pytest.PytestReturnNotNoneWarning"
    )
    result.assert_outcomes(passed=6)
    result.stdout.no_fnmatch_line("*PytestReturnNotNoneWarning*")


def test_function_receives_bookkeeping_before_call(pytester, read_db):
    pytester.makepyfile(
        sweep_bk="""
        import datetime
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1]))
        def sweep_bk(pset):
            assert isinstance(pset["_time_utc"], datetime.datetime)
            return {"seen": {k: str(pset[k]) for k in
                             ("_run_id", "_pset_id", "_pset_hash", "_calc_dir", "_time_utc")}}
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=1)
    row = read_db().iloc[0]
    for key in ("_run_id", "_pset_id", "_pset_hash", "_calc_dir"):
        assert row["seen"][key] == str(row[key])
    assert row["_calc_dir"] == str(pytester.path / "calc")
    assert row["seen"]["_time_utc"].startswith(str(row["_time_utc"])[:19].replace("T", " "))


def test_failed_pset_keeps_its_row(pytester, read_db):
    pytester.makepyfile(
        sweep_fail="""
        import threading
        import pytest_psweep as ps

        @ps.sweep(ps.grid(kind=["ok", "assert", "raise", "list", "unpicklable"]))
        def sweep_fail(pset):
            kind = pset["kind"]
            if kind == "assert":
                assert 1 == 2, "one is not two"
            if kind == "raise":
                raise RuntimeError("solver diverged")
            if kind == "list":
                return [1, 2]
            if kind == "unpicklable":
                return {"lock": threading.Lock(), "value": 3}
            return {"value": 1}
    """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*sweep_fail*kind=list*returned a list*",
            # the user's function, not the plugin's frames
            "    the function, */sweep_fail.py:*",
            "        @ps.sweep(ps.grid(kind=*",
            "        def sweep_fail(pset):",
        ]
    )
    assert "plugin.py" not in result.stdout.str()
    df = read_db().set_index("kind")
    assert list(df["_outcome"]) == ["passed", "failed", "failed", "failed", "failed"]
    assert df.loc["assert", "_error"].startswith("AssertionError: one is not two")
    assert df.loc["raise", "_error"] == "RuntimeError: solver diverged"
    assert "returned a list" in df.loc["list", "_error"]
    assert "\n" not in df.loc["list", "_error"]  # the row's error stays one line
    assert "'lock'" in df.loc["unpicklable", "_error"]
    assert df.loc["unpicklable", "value"] == 3  # what could be kept is kept
    assert df.loc["ok", "value"] == 1


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


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_simulate_and_backup_copy_nothing_when_no_sweep_is_chosen(pytester, workers):
    pytester.makepyfile(sweep_mul=MUL, test_plain="def test_one():\n    assert True\n")
    pytester.runpytest_subprocess("--psweep", "sweep_mul.py").assert_outcomes(passed=6)
    for option in ("--psweep-simulate", "--psweep-backup"):
        result = pytester.runpytest_subprocess("--psweep", option, "-k", "test_one", *workers)
        result.assert_outcomes(passed=1)
    # only the test ran: no simulate copy, no backup of the calc dir
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith("calc")) == ["calc"]


@pytest.mark.parametrize(
    "reads",
    [["--psweep-skip-dups"], ["--psweep-compare"]],
    ids=["skip-dups", "compare"],
)
def test_under_xdist_options_that_read_the_database_copy_nothing_either(pytester, reads):
    # the workers are handed the done psets or the baseline before any sweep is known
    # to run: read from the calc dir, without the copy that opening it makes
    pytester.makepyfile(sweep_mul=MUL, test_plain="def test_one():\n    assert True\n")
    pytester.runpytest_subprocess("--psweep", "sweep_mul.py").assert_outcomes(passed=6)
    for option in ("--psweep-simulate", "--psweep-backup"):
        result = pytester.runpytest_subprocess(
            "--psweep", option, *reads, "-k", "test_one", "-n", "2"
        )
        result.assert_outcomes(passed=1)
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith("calc")) == ["calc"]
    if reads == ["--psweep-skip-dups"]:  # what was read still holds once sweeps run
        result = pytester.runpytest_subprocess("--psweep", "--psweep-simulate", *reads, "-n", "2")
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


def test_sweep_module_source_is_backed_up(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL)
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=6)
    run_id = read_db()["_run_id"].iloc[0]
    copy = pytester.path / "calc" / "backup_script" / run_id / "sweep_mul.py"
    assert copy.read_text() == (pytester.path / "sweep_mul.py").read_text()
    # the copies are never collected again
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=6)


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


def test_header_under_xdist_names_the_same_sweeps_and_counts_as_serially(pytester):
    # the xdist controller collects nothing: a worker's counts come with its first
    # report; methods, folders and a further parametrize (cases) counted as serially
    pytester.makepyfile(sweep_mul=MUL)
    pytester.mkpydir("sub")
    pytester.path.joinpath("sub", "test_more.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import pytest_psweep as ps

            class TestStudy:
                @ps.sweep(ps.plist("a", [1, 2, 3]))
                def sweep_method(self, pset):
                    return {"r": pset["a"]}

            @pytest.mark.parametrize("case", [pytest.param(1, id="x[1]"), 2])
            @ps.sweep(ps.plist("b", ["u", "v"]))
            def sweep_cases(pset, case):
                return {"r": case}

            def test_plain():
                pass
            """
        )
    )

    def header(*args: str) -> list[str]:
        result = pytester.runpytest_subprocess("--psweep", "-p", "no:randomly", *args)
        result.assert_outcomes(passed=14)
        return sorted(line for line in result.outlines if re.match(r"psweep: .*: \d+ psets", line))

    serial = header()
    assert serial == [
        "psweep: sub/test_more.py::TestStudy::sweep_method: 3 psets",
        "psweep: sub/test_more.py::sweep_cases: 2 psets × 2 cases",
        "psweep: sweep_mul.py::sweep_mul: 6 psets",
    ]
    assert header("-n", "2") == serial
    assert header("-n", "2", "--dist", "loadgroup") == serial  # ids get "@group" there


ROWS = ["a", "b", "result", "_outcome", "_sweep", "_pset_hash"]


def test_xdist_writes_the_same_rows_as_serial(pytester, read_db):
    pytester.makepyfile(sweep_mul=MUL.replace('"a", [1, 2, 3]', '"a", [1, 2, -3, 4, 5]'))
    pytester.runpytest_subprocess("--psweep", "-n", "0").assert_outcomes(passed=8, failed=2)
    serial = read_db()
    (pytester.path / "calc" / "results.pk").unlink()
    pytester.runpytest_subprocess("--psweep", "-n", "2").assert_outcomes(passed=8, failed=2)
    parallel = read_db()
    assert parallel["_run_id"].nunique() == 1
    assert len(set(parallel["_exec_host"])) == 1
    key = ["a", "b"]
    pd_serial = serial[ROWS].sort_values(key).reset_index(drop=True)
    pd_parallel = parallel[ROWS].sort_values(key).reset_index(drop=True)
    assert pd_serial.equals(pd_parallel)


def test_numpy_and_other_non_builtin_results_cross_xdist(pytester, read_db):
    pytester.makepyfile(
        sweep_np="""
        import datetime, pathlib
        import numpy as np
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2, 3, 4]))
        def sweep_np(pset):
            return {
                "f": np.float64(pset["a"]) / 2,
                "i": np.int32(pset["a"]),
                "arr": np.arange(pset["a"]),
                "when": datetime.datetime(2020, 1, pset["a"]),
                "path": pathlib.Path("out") / str(pset["a"]),
            }
    """
    )
    pytester.runpytest_subprocess("--psweep", "-n", "2").assert_outcomes(passed=4)
    from pathlib import Path

    import numpy as np

    df = read_db().sort_values("a")
    assert list(df["f"]) == [0.5, 1.0, 1.5, 2.0]
    assert [list(arr) for arr in df["arr"]] == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert isinstance(df["arr"].iloc[0], np.ndarray)
    assert list(df["i"]) == [1, 2, 3, 4]
    assert [w.day for w in df["when"]] == [1, 2, 3, 4]
    assert list(df["path"]) == [Path("out") / str(a) for a in (1, 2, 3, 4)]


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


def test_fixture_teardown_still_sees_the_bookkeeping(pytester, read_db):
    pytester.makeconftest("""
        import pathlib, pytest

        @pytest.fixture
        def out_dir(pset):
            folder = pathlib.Path(pset["_calc_dir"]) / pset["_pset_id"]
            folder.mkdir(parents=True)
            yield folder
            (folder / "teardown.txt").write_text(pset["_pset_id"])
    """)
    pytester.makepyfile(
        sweep_files="""
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_files(pset, out_dir):
            (out_dir / "out.txt").write_text(str(pset["a"]))
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=2)
    for pset_id, a in zip(read_db()["_pset_id"], (1, 2)):
        folder = pytester.path / "calc" / pset_id
        assert (folder / "out.txt").read_text() == str(a)
        assert (folder / "teardown.txt").read_text() == pset_id


def test_pset_dir_is_the_psets_own_kept_folder(pytester, read_db, workers):
    pytester.makepyfile(
        sweep_files="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2]))
        def sweep_files(pset, pset_dir):
            (pset_dir / "out.txt").write_text(str(pset["a"] * 3))
            return {"where": str(pset_dir)}
        """
    )
    pytester.runpytest_subprocess("--psweep", *workers).assert_outcomes(passed=2)
    df = read_db()
    for pset_id, a, where in zip(df["_pset_id"], df["a"], df["where"]):
        folder = pytester.path / "calc" / pset_id
        assert where == str(folder)
        assert (folder / "out.txt").read_text() == str(a * 3)
