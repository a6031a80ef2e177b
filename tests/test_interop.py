"""pytest --psweep with the plugins people already run, each checked by reading the
database it wrote, serially and under xdist (``workers``); those that report a session
are in test_interop_reports.py.

The plugins are the dev extra's (pyproject.toml): nothing is installed here.
"""

from __future__ import annotations

import re

import pytest

# the sessions these tests start load every installed plugin (conftest.py)
pytestmark = pytest.mark.all_plugins

FLAKY = """
    import pathlib
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2, 3]))
    def sweep_flaky(pset):
        # a=2 fails on its first attempt only, a=3 always
        marker = pathlib.Path(f"tried_{pset['a']}")
        first = not marker.exists()
        marker.touch()
        assert pset["a"] != 3, "always"
        assert not (pset["a"] == 2 and first), "flaky"
        return {"r": pset["a"]}
"""


def test_reruns_keep_every_attempt_and_count_psets(pytester, read_db, workers):
    pytester.makepyfile(sweep_flaky=FLAKY)
    result = pytester.runpytest_subprocess("--psweep", "--reruns", "2", *workers)
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (2, 1, 3)
    result.stdout.fnmatch_lines(["*psets 2 passed, 1 failed, 0 skipped (and 3 reruns); 6 rows*"])
    df = read_db().sort_values(["a", "_attempt"])
    rows = list(zip(df["a"], df["_attempt"], df["_outcome"]))
    assert rows == [
        (1, 1, "passed"),
        (2, 1, "rerun"),
        (2, 2, "passed"),
        (3, 1, "rerun"),
        (3, 2, "rerun"),
        (3, 3, "failed"),
    ]
    assert df["_pset_id"].nunique() == 6  # each attempt is a row of its own
    assert df.loc[df["_outcome"] == "rerun", "_error"].str.contains("AssertionError").all()
    # the current result per pset: the last attempt
    last = df.drop_duplicates("_pset_hash", keep="last")
    assert last["_outcome"].tolist() == ["passed", "passed", "failed"]


CASES = """
    import pytest
    import pytest_psweep as ps

    @pytest.fixture(params=["fast", "slow"])
    def solver(request):
        return request.param.upper()

    @pytest.mark.parametrize("order", [1, 2])
    @ps.sweep(ps.plist("n", [10, 20]))
    def sweep_solve(pset, solver, order):
        return {"r": f"{solver}{order}/{pset['n']}"}
"""


# pset a=1's teardown fails its first {fails} times (its runs counted in a file)
TEARDOWN = """
import pathlib
import pytest
import pytest_psweep as ps

@pytest.fixture
def cleanup(pset):
    yield
    torn = pathlib.Path("torn")
    failed = len(torn.read_text()) if torn.exists() else 0
    if pset["a"] == 1 and failed < {fails}:
        torn.write_text("x" * (failed + 1))
        raise RuntimeError("teardown fails")

@ps.sweep(ps.plist("a", [0, 1]))
def sweep_td(pset, cleanup):
    return {{"r": pset["a"]}}
"""


@pytest.mark.long
def test_a_teardown_that_fails_once_is_rerun_and_counted_as_pytest_counts_it(
    pytester, read_db, workers
):
    pytester.makepyfile(sweep_td=TEARDOWN.format(fails=1))
    result = pytester.runpytest_subprocess("--psweep", "--reruns", "1", *workers)
    outcomes = result.parseoutcomes()  # the function passed, then its teardown failed
    assert (outcomes["passed"], outcomes["rerun"]) == (3, 1) and "error" not in outcomes
    result.stdout.fnmatch_lines(
        ["*psets 3 passed, 0 failed, 0 skipped (and 1 rerun in teardown); 3 rows*"]
    )
    df = read_db().sort_values(["a", "_attempt"])
    assert list(zip(df["a"], df["_attempt"], df["r"])) == [(0, 1, 0), (1, 1, 1), (1, 2, 1)]


@pytest.mark.long
def test_a_teardown_that_fails_on_every_attempt_is_said_as_pytest_counts_it(
    pytester, read_db, workers
):
    pytester.makepyfile(sweep_td=TEARDOWN.format(fails=99))  # every attempt
    result = pytester.runpytest_subprocess("--psweep", "--reruns", "2", *workers)
    outcomes = result.parseoutcomes()  # two reruns, then the last attempt's error
    assert (outcomes["passed"], outcomes["rerun"], outcomes["errors"]) == (4, 2, 1)
    result.stdout.fnmatch_lines(
        [
            "*psets 4 passed, 0 failed, 0 skipped "
            "(and 2 reruns in teardown, 1 error in teardown); 4 rows*"
        ]
    )
    df = read_db().sort_values(["a", "_attempt"])
    assert list(zip(df["a"], df["_attempt"], df["_outcome"])) == [
        (0, 1, "passed"),
        (1, 1, "passed"),
        (1, 2, "passed"),
        (1, 3, "passed"),
    ]


def test_other_parametrizations_are_columns_and_keep_cases_apart(pytester, read_db, workers):
    pytester.makepyfile(sweep_cases=CASES)
    result = pytester.runpytest_subprocess("--psweep", "-k", "fast", *workers)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["psweep: sweep_cases.py::sweep_solve: 2 psets × 2 cases"])
    df = read_db()
    # a parametrized fixture's column holds its param, as pytest's ids do
    assert sorted(zip(df["solver"], df["order"], df["n"], df["r"])) == [
        ("fast", 1, 10, "FAST1/10"),
        ("fast", 1, 20, "FAST1/20"),
        ("fast", 2, 10, "FAST2/10"),
        ("fast", 2, 20, "FAST2/20"),
    ]
    # the slow cases never ran: skip-dups skips none of them, and all fast ones
    result = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups", "-rs", *workers)
    result.assert_outcomes(passed=4, skipped=4)
    result.stdout.fnmatch_lines(["psweep: sweep_cases.py::sweep_solve: 2 psets × 4 cases"])
    df = read_db()
    assert sorted(df["solver"]) == ["fast"] * 4 + ["slow"] * 4
    assert df.groupby("_pset_hash")["_case_hash"].nunique().tolist() == [4, 4]
    # and each case is compared with its own baseline: all the same
    result = pytester.runpytest_subprocess("--psweep", "--psweep-compare", *workers)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*8 same, 0 differ, 0 new*"])


def test_a_parametrization_named_like_a_parameter_fails_its_psets_clearly(pytester, read_db):
    pytester.makepyfile(
        sweep_clash="""
        import pytest
        import pytest_psweep as ps

        @pytest.mark.parametrize("n", [1])
        @ps.sweep(ps.plist("n", [10]))
        def sweep_clash(pset, n):
            return {"r": 1}
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*sweep sweep_clash.py::sweep_clash: the parametrization 'n'*"])
    assert read_db()["_outcome"].tolist() == ["failed"]


def test_repeat_count_is_a_column(pytester, read_db, workers):
    pytester.makepyfile(
        sweep_rep="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2]))
        def sweep_rep(pset):
            return {"r": pset["a"]}
        """
    )
    result = pytester.runpytest_subprocess("--psweep", "--count", "3", *workers)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["psweep: sweep_rep.py::sweep_rep: 2 psets × 3 cases"])
    df = read_db()
    assert sorted(zip(df["a"], df["_repeat"])) == [(a, n) for a in (1, 2) for n in (1, 2, 3)]
    assert df["_pset_hash"].nunique() == 2  # repetitions of a pset share its hash


THREE = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1, 2, 3]))
    def sweep_ids(pset):
        return {"r": pset["a"]}

    def test_plain():
        pass
"""


def test_collect_only_quiet_prints_node_ids_to_feed_back(pytester, read_db):
    pytester.makepyfile(sweep_ids=THREE)
    result = pytester.runpytest_subprocess("--psweep", "--co", "-q")
    ids = [line for line in result.outlines if line.strip()][:-1]
    assert ids == [
        "sweep_ids.py::sweep_ids[a=1]",
        "sweep_ids.py::sweep_ids[a=2]",
        "sweep_ids.py::sweep_ids[a=3]",
        "sweep_ids.py::test_plain",
    ]
    assert re.fullmatch(r"4 tests collected in .*", result.outlines[-1])
    assert not (pytester.path / "calc").exists()  # a dry run writes nothing
    result = pytester.runpytest_subprocess("--psweep", *ids[1:3])
    result.assert_outcomes(passed=2)
    assert sorted(read_db()["a"]) == [2, 3]
    # with normal verbosity the dry run says where rows would go and what is done
    result = pytester.runpytest_subprocess("--psweep", "--co")
    result.stdout.fnmatch_lines(
        [
            "psweep: database */calc/results.pk (dry run: nothing runs or is written)",
            "psweep: sweep_ids.py::sweep_ids: 3 psets",
            "*look ahead: sweep_ids.py::sweep_ids: 1 new, 2 done*",
        ]
    )
    assert "psweep: run" not in result.stdout.str()


def test_a_sweep_hidden_by_a_decorator_is_named_in_a_warning(pytester):
    pytester.makepyfile(
        sweep_hidden="""
        import hypothesis
        import hypothesis.strategies as st
        import pytest_psweep as ps

        def timed(func):
            def wrapper(*args, **kwargs):  # no functools.wraps
                return func(*args, **kwargs)
            return wrapper

        @timed
        @ps.sweep(ps.plist("a", [1]))
        def sweep_wrapped(pset):
            pass

        @hypothesis.given(x=st.integers())
        @ps.sweep(ps.plist("a", [1]))
        def sweep_given_outside(pset, x):
            pass

        def sweep_forgot(pset):
            pass

        @ps.sweep(ps.plist("a", [1, 2]))
        @hypothesis.settings(max_examples=5)
        @hypothesis.given(x=st.integers(0, 9))
        def sweep_given_inside(pset, x):
            assert pset["a"] + x >= 1
        """
    )
    result = pytester.runpytest_subprocess("--psweep", "-p", "hypothesispytest")
    result.assert_outcomes(passed=2, warnings=3)
    result.stdout.fnmatch_lines_random(
        [
            "*sweep_hidden.py::sweep_wrapped is named like a sweep but carries no sweep*"
            "functools.wraps*",
            "*sweep_hidden.py::sweep_given_outside is named like a sweep but carries no "
            "sweep*@given is above @ps.sweep; put @ps.sweep outermost*",
            "*sweep_hidden.py::sweep_forgot is named like a sweep but carries no sweep*",
        ]
    )
    # without --psweep sweeps are left alone, and so are these
    plain = pytester.runpytest_subprocess("-p", "hypothesispytest")
    assert "named like a sweep" not in plain.stdout.str()


BENCH = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("n", [10, 1000]))
    def sweep_bench(pset, benchmark):
        total = benchmark(sum, range(pset["n"]))
        return {"total": total}
"""


@pytest.mark.parametrize(
    "args, measured",
    [([], True), (["--benchmark-disable"], False), (["-n", "2"], False)],
    ids=["measured", "disabled", "xdist"],
)
def test_benchmark_statistics_are_columns(pytester, read_db, monkeypatch, args, measured):
    # pytest-benchmark switches itself off in an xdist worker's children too
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(sweep_bench=BENCH)
    result = pytester.runpytest_subprocess("--psweep", *args)
    result.assert_outcomes(passed=2)
    df = read_db().sort_values("n")
    assert df["total"].tolist() == [45, 499500]
    assert df["benchmark_disabled"].tolist() == [not measured] * 2
    if measured:
        assert (df["benchmark_rounds"] >= 1).all()
        assert (df["benchmark_min"] <= df["benchmark_mean"]).all()
        assert (df["benchmark_mean"] <= df["benchmark_max"]).all()
        assert (df["benchmark_stddev"] >= 0).all()
        # summing 100 times more numbers takes longer
        assert df["benchmark_min"].iloc[1] > df["benchmark_min"].iloc[0]
    else:
        assert "benchmark_mean" not in df or df["benchmark_mean"].isna().all()
