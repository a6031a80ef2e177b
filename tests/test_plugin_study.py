"""`pytest --psweep` end to end (SPEC §3, §5, §6) on one shared study: the tests that
each ran a session of their own sweeps with the default options, serially or under
xdist, assert their parts of the one serial and the one xdist session here."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import pytest_psweep as ps
from tests.processes import make_study, run_session
from tests.test_plugin import MUL

# One study for the tests below that each ran a session of their own sweeps with the
# default options: each test's sweep file is here as its test wrote it, and the test
# asserts on its own sweep's items (``-v`` lines) and rows (``_sweep``). The serial
# session runs them all; the xdist one (``-n 2``) those the tests compare or need
# under xdist. Both on one xdist worker (loadgroup): each runs once.
STUDY = pytest.mark.xdist_group("plugin_study")

BESIDE_TESTS = """
    import pytest_psweep as ps

    def test_one():
        pass

    @ps.sweep(ps.grid(c=[5, 6]))
    def sweep_in_test_module(pset):
        return {"double": pset["c"] * 2}
"""

METHOD = """
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

# the items of one pset share its dict: what one item's function does to it must not
# reach the next item, and each item gets a row of its own
SOLVERS = """
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

FIXTURES_CONFTEST = """
    import pytest

    @pytest.fixture(scope="session")
    def mesh():
        return {"cells": 10}

    @pytest.fixture
    def scaled(pset):
        # fixtures get the same pset, book-keeping already set
        return pset["a"] * 100, pset["_pset_id"]
"""

FIXTURES = """
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

MARKS = """
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

BOOKKEEPING = """
    import datetime
    import pytest_psweep as ps

    @ps.sweep(ps.grid(a=[1]))
    def sweep_bk(pset):
        assert isinstance(pset["_time_utc"], datetime.datetime)
        return {"seen": {k: str(pset[k]) for k in
                         ("_run_id", "_pset_id", "_pset_hash", "_calc_dir", "_time_utc")}}
"""

FAILING = """
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

TEARDOWN_CONFTEST = """
    import pathlib, pytest

    @pytest.fixture
    def out_dir(pset):
        folder = pathlib.Path(pset["_calc_dir"]) / pset["_pset_id"]
        folder.mkdir(parents=True)
        yield folder
        (folder / "teardown.txt").write_text(pset["_pset_id"])
"""

TEARDOWN = """
    import pytest_psweep as ps

    @ps.sweep(ps.grid(a=[1, 2]))
    def sweep_files(pset, out_dir):
        (out_dir / "out.txt").write_text(str(pset["a"]))
"""

PSET_DIR = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2]))
    def sweep_files(pset, pset_dir):
        (pset_dir / "out.txt").write_text(str(pset["a"] * 3))
        return {"where": str(pset_dir)}
"""

# methods, folders and a further parametrize (cases), for the header's counts
MORE = """
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

NUMPY = """
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

# in both studies, their rows compared
SOME_FAIL = MUL.replace('"a", [1, 2, 3]', '"a", [1, 2, -3, 4, 5]')

# the files both sessions run; the serial one runs all
BOTH = dict(
    sweep_mul=MUL,
    sweep_some_fail=SOME_FAIL,
    sweep_solvers=SOLVERS,
    sweep_pset_dir=PSET_DIR,
)
SERIAL_ONLY = dict(
    test_plain=BESIDE_TESTS,
    test_study=METHOD,
    sweep_marks=MARKS,
    sweep_bk=BOOKKEEPING,
    sweep_fail=FAILING,
)
# the line of an item's outcome, ``-v``: serial, and under xdist
OUTCOME = re.compile(
    r"(?P<id>\S+) (?P<word>PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR)\b"
    r"|\[gw\d+\] \[ *\d+%\] (?P<xword>PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR) (?P<xid>\S+)"
)


class Study(NamedTuple):
    """A study's folder and the result of the session that ran it."""

    folder: Path
    result: pytest.RunResult

    def rows(self, sweep: str) -> Any:
        """The rows of one sweep (its id) in the default calc dir's database."""
        df = ps.df_read(self.folder / "calc" / "results.pk")
        return df[df["_sweep"] == sweep].reset_index(drop=True)

    def outcomes(self, prefix: str) -> Counter[str]:
        """How many items whose node id starts with ``prefix`` ended how (``-v``)."""
        counts: Counter[str] = Counter()
        for line in self.result.outlines:
            match = OUTCOME.match(line)
            if match and (match["id"] or match["xid"]).startswith(prefix):
                counts[match["word"] or match["xword"]] += 1
        return counts


@pytest.fixture(scope="module")
def serial_study(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("serial"), **BOTH, **SERIAL_ONLY)
    make_study(folder / "sub", __init__="", test_more=MORE)
    # the tests that bring a conftest: each in a folder of its own
    make_study(folder / "fixtures", conftest=FIXTURES_CONFTEST, sweep_fix=FIXTURES)
    make_study(folder / "teardown", conftest=TEARDOWN_CONFTEST, sweep_teardown=TEARDOWN)
    return Study(folder, run_session(folder, "-v"))


@pytest.fixture(scope="module")
def xdist_study(tmp_path_factory):
    folder = make_study(tmp_path_factory.mktemp("xdist"), **BOTH, sweep_np=NUMPY)
    make_study(folder / "sub", __init__="", test_more=MORE)
    return Study(folder, run_session(folder, "-v", "-n", "2"))


@pytest.fixture(scope="module", params=["serial", "xdist"])
def study(request):
    """The serial study, then the xdist one."""
    return request.getfixturevalue(f"{request.param}_study")


@STUDY
def test_sweeps_in_test_modules_and_sweep_files_run_beside_tests(serial_study):
    assert serial_study.outcomes("test_plain.py::") == {"PASSED": 3}
    assert serial_study.outcomes("sweep_mul.py::") == {"PASSED": 6}
    assert len(serial_study.rows("sweep_mul.py::sweep_mul")) == 6
    assert len(serial_study.rows("test_plain.py::sweep_in_test_module")) == 2


@STUDY
def test_sweep_as_a_method_of_a_test_class(serial_study):
    assert serial_study.outcomes("test_study.py::") == {"PASSED": 2}
    serial_study.result.stdout.fnmatch_lines(
        ["*test_study.py::TestStudy::sweep_scaled[[]a=1[]] PASSED*"]
    )
    assert list(serial_study.rows("test_study.py::TestStudy::sweep_scaled")["r"]) == [4, 7]


@STUDY
def test_sweep_with_a_further_parametrize_runs_each_pset_per_case(study):
    assert study.outcomes("sweep_solvers.py::") == {"PASSED": 4}
    study.result.stdout.fnmatch_lines(["*psweep: sweep_solvers.py::sweep_solve: 2 psets × 2 cases"])
    df = study.rows("sweep_solvers.py::sweep_solve")
    rows = sorted(zip(df["solver"], df["r"]))
    assert rows == [("exact", 3), ("exact", 6), ("fast", 2), ("fast", 4)]
    assert df["_pset_id"].nunique() == 4
    # the two cases of a pset share its hash and differ in the case's
    assert df.groupby("_pset_hash")["_case_hash"].nunique().tolist() == [2, 2]
    # the row is what the function left in the pset, merged with what it returned
    assert set(df["scratch"]) == {"fast", "exact"}


@STUDY
def test_fixtures_of_any_scope_beside_pset(serial_study):
    assert serial_study.outcomes("fixtures/") == {"PASSED": 2}
    df = serial_study.rows("fixtures/sweep_fix.py::sweep_fix")
    assert list(df["r"]) == [117, 217]
    assert list(df["node"]) == ["sweep_fix[a=1]", "sweep_fix[a=2]"]
    assert list(df["fixture_pset_id"]) == list(df["_pset_id"])


@STUDY
def test_marks_on_the_function_apply_per_pset(serial_study):
    assert serial_study.outcomes("sweep_marks.py::") == {
        "SKIPPED": 3,
        "XFAIL": 1,
        "XPASS": 1,
        "PASSED": 1,
    }
    # skipped before they ran: no row; skipped inside the function: a row
    assert serial_study.rows("sweep_marks.py::sweep_skipped").empty
    xfail = serial_study.rows("sweep_marks.py::sweep_xfail")
    assert list(xfail["_outcome"]) == ["failed", "passed"]
    assert xfail["_error"].iloc[0].startswith("AssertionError")
    inside = serial_study.rows("sweep_marks.py::sweep_skip_inside")
    assert list(inside["_outcome"]) == ["skipped", "passed"]


@STUDY
def test_function_receives_bookkeeping_before_call(serial_study):
    assert serial_study.outcomes("sweep_bk.py::") == {"PASSED": 1}
    (row,) = (row for _, row in serial_study.rows("sweep_bk.py::sweep_bk").iterrows())
    for key in ("_run_id", "_pset_id", "_pset_hash", "_calc_dir"):
        assert row["seen"][key] == str(row[key])
    assert row["_calc_dir"] == str(serial_study.folder / "calc")
    assert row["seen"]["_time_utc"].startswith(str(row["_time_utc"])[:19].replace("T", " "))


@STUDY
def test_failed_pset_keeps_its_row(serial_study):
    result = serial_study.result
    assert serial_study.outcomes("sweep_fail.py::") == {"PASSED": 1, "FAILED": 4}
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
    df = serial_study.rows("sweep_fail.py::sweep_fail").set_index("kind")
    assert list(df["_outcome"]) == ["passed", "failed", "failed", "failed", "failed"]
    assert df.loc["assert", "_error"].startswith("AssertionError: one is not two")
    assert df.loc["raise", "_error"] == "RuntimeError: solver diverged"
    assert "returned a list" in df.loc["list", "_error"]
    assert "\n" not in df.loc["list", "_error"]  # the row's error stays one line
    assert "'lock'" in df.loc["unpicklable", "_error"]
    assert df.loc["unpicklable", "value"] == 3  # what could be kept is kept
    assert df.loc["ok", "value"] == 1


def _header(result: pytest.RunResult) -> list[str]:
    """The header's lines of the sweeps in sweep_mul.py and sub/test_more.py."""
    sweeps = r"psweep: (sweep_mul\.py|sub/test_more\.py)::.*: \d+ psets"
    return sorted(line for line in result.outlines if re.match(sweeps, line))


@STUDY
def test_header_under_xdist_names_the_same_sweeps_and_counts_as_serially(
    serial_study, xdist_study, pytester
):
    # the xdist controller collects nothing: a worker's counts come with its first
    # report; methods, folders and a further parametrize (cases) counted as serially
    for study in (serial_study, xdist_study):
        assert study.outcomes("sweep_mul.py::") + study.outcomes("sub/") == {"PASSED": 14}
    serial = _header(serial_study.result)
    assert serial == [
        "psweep: sub/test_more.py::TestStudy::sweep_method: 3 psets",
        "psweep: sub/test_more.py::sweep_cases: 2 psets × 2 cases",
        "psweep: sweep_mul.py::sweep_mul: 6 psets",
    ]
    assert _header(xdist_study.result) == serial
    # ids get "@group" under loadgroup
    make_study(pytester.path, sweep_mul=MUL)
    make_study(pytester.path / "sub", __init__="", test_more=MORE)
    result = pytester.runpytest_subprocess("--psweep", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=14)
    assert sorted(line for line in result.outlines if re.match(r"psweep: .*: \d+ psets", line)) == (
        serial
    )


ROWS = ["a", "b", "result", "_outcome", "_sweep", "_pset_hash"]


@STUDY
def test_xdist_writes_the_same_rows_as_serial(serial_study, xdist_study):
    for study in (serial_study, xdist_study):
        assert study.outcomes("sweep_some_fail.py::") == {"PASSED": 8, "FAILED": 2}
    serial = serial_study.rows("sweep_some_fail.py::sweep_mul")
    everything = ps.df_read(xdist_study.folder / "calc" / "results.pk")
    assert everything["_run_id"].nunique() == 1
    assert len(set(everything["_exec_host"])) == 1
    parallel = xdist_study.rows("sweep_some_fail.py::sweep_mul")
    key = ["a", "b"]
    pd_serial = serial[ROWS].sort_values(key).reset_index(drop=True)
    pd_parallel = parallel[ROWS].sort_values(key).reset_index(drop=True)
    assert len(pd_serial) == 10 and pd_serial.equals(pd_parallel)


@STUDY
def test_numpy_and_other_non_builtin_results_cross_xdist(xdist_study):
    assert xdist_study.outcomes("sweep_np.py::") == {"PASSED": 4}
    df = xdist_study.rows("sweep_np.py::sweep_np").sort_values("a")
    assert list(df["f"]) == [0.5, 1.0, 1.5, 2.0]
    assert [list(arr) for arr in df["arr"]] == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert isinstance(df["arr"].iloc[0], np.ndarray)
    assert list(df["i"]) == [1, 2, 3, 4]
    assert [w.day for w in df["when"]] == [1, 2, 3, 4]
    assert list(df["path"]) == [Path("out") / str(a) for a in (1, 2, 3, 4)]


@STUDY
def test_fixture_teardown_still_sees_the_bookkeeping(serial_study):
    assert serial_study.outcomes("teardown/") == {"PASSED": 2}
    df = serial_study.rows("teardown/sweep_teardown.py::sweep_files")
    assert list(df["a"]) == [1, 2]
    for pset_id, a in zip(df["_pset_id"], (1, 2)):
        folder = serial_study.folder / "calc" / pset_id
        assert (folder / "out.txt").read_text() == str(a)
        assert (folder / "teardown.txt").read_text() == pset_id


@STUDY
def test_pset_dir_is_the_psets_own_kept_folder(study):
    assert study.outcomes("sweep_pset_dir.py::") == {"PASSED": 2}
    df = study.rows("sweep_pset_dir.py::sweep_files")
    assert len(df) == 2
    for pset_id, a, where in zip(df["_pset_id"], df["a"], df["where"]):
        folder = study.folder / "calc" / pset_id
        assert where == str(folder)
        assert (folder / "out.txt").read_text() == str(a * 3)
