"""`pytest --psweep` end to end (SPEC §3, §5, §6), through pytester subprocess runs."""

from __future__ import annotations

import json

import pytest

import pytest_psweep as ps
from tests.processes import (
    copy_study,
    make_study,
    run_session,
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
# worker (loadgroup): warnings about returned values raised, as one of them asks. The
# tests that go on from such a run (simulate, backup, a second session) copy its sweep
# file and calc dir into their own folder: the fixture's folder stays as it ran.
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


@MUL_STUDY
def test_simulate_does_not_call_functions_or_touch_calc(mul_study, pytester, read_db):
    copy_study(mul_study[0], pytester.path, "sweep_mul.py", "calc")
    assert len(read_db()) == 6
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


@MUL_STUDY
def test_backup_copies_calc_dir_once(mul_study, pytester, read_db):
    copy_study(mul_study[0], pytester.path, "sweep_mul.py", "calc")
    first = read_db()
    assert len(first) == 6
    pytester.runpytest_subprocess("--psweep", "--psweep-backup", "-n", "2")
    stamp = first["_time_utc"].max().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    backups = [p.name for p in pytester.path.iterdir() if p.name.startswith("calc_")]
    assert backups == [f"calc_{stamp}"]
    assert len(read_db(f"calc_{stamp}")) == 6
    assert len(read_db()) == 12


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
def test_sweep_module_source_is_backed_up(mul_study, tmp_path):
    folder, result = mul_study
    result.assert_outcomes(passed=6)
    run_id = ps.df_read(folder / "calc" / "results.pk")["_run_id"].iloc[0]
    copy = folder / "calc" / "backup_script" / run_id / "sweep_mul.py"
    assert copy.read_text() == (folder / "sweep_mul.py").read_text()
    # the copies are never collected again: a simulation (in a copy of the folder, the
    # backed-up source in it) collects the original only
    copy_study(folder, tmp_path, "sweep_mul.py", "calc")
    assert (tmp_path / "calc" / "backup_script" / run_id / "sweep_mul.py").exists()
    run_session(tmp_path, "--psweep-simulate").assert_outcomes(passed=6)


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


@MUL_STUDY
def test_one_run_id_per_session_made_on_the_controller(mul_study, pytester, read_db):
    # a serial session's rows, then an xdist session's: one run id for each
    copy_study(mul_study[0], pytester.path, "sweep_mul.py", "calc")
    pytester.runpytest_subprocess("--psweep", "-n", "2").assert_outcomes(passed=6)
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


# MUL with HOOKS_CONFTEST run once serially; each variant of the test below runs a
# second session in a copy (one xdist worker: loadgroup).
HOOKS_STUDY = pytest.mark.xdist_group("plugin_hooks")


@pytest.fixture(scope="module")
def hooks_study(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("hooks"), conftest=HOOKS_CONFTEST, sweep_mul=MUL)
    run_session(folder).assert_outcomes(passed=6)
    return folder


@HOOKS_STUDY
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_row_and_finish_hooks_from_conftest(hooks_study, pytester, read_db, workers):
    copy_study(hooks_study, pytester.path, "conftest.py", "sweep_mul.py", "calc")
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
