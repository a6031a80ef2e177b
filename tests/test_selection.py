"""Selecting psets by value: readable ids for numpy values, --psweep-select (SPEC §5)."""

from __future__ import annotations

import pytest

import pytest_psweep as ps
from pytest_psweep import PsweepError
from pytest_psweep.selection import Selection

SOLVER = """
    import numpy as np
    import pytest_psweep as ps

    @ps.sweep(ps.pgrid(ps.plist("omega", np.linspace(1.0, 2.0, 5)), ps.plist("n", [16, 32])))
    def sweep_sor(pset):
        return {"iters": int(100 / pset["omega"])}

    @ps.sweep(ps.plist("k", np.arange(2)) + ps.plist("s", [np.float64(0.0)]))
    def sweep_other(pset):
        pass
"""


def test_numpy_values_make_readable_ids(pytester):
    pytester.makepyfile(sweep_sor=SOLVER)
    result = pytester.runpytest_subprocess("--psweep", "--co", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids[:3] == [
        "sweep_sor.py::sweep_sor[omega=1.0-n=16]",
        "sweep_sor.py::sweep_sor[omega=1.0-n=32]",
        "sweep_sor.py::sweep_sor[omega=1.25-n=16]",
    ]
    assert ids[-3:] == [
        "sweep_sor.py::sweep_other[k=0]",
        "sweep_sor.py::sweep_other[k=1]",
        "sweep_sor.py::sweep_other[s=0.0]",
    ]
    # and such an id selects its pset
    one = pytester.runpytest_subprocess("--psweep", "sweep_sor.py::sweep_sor[omega=1.75-n=32]")
    one.assert_outcomes(passed=1)


def test_select_by_an_expression_over_parameters(pytester, read_db, workers):
    pytester.makepyfile(sweep_sor=SOLVER)
    result = pytester.runpytest_subprocess(
        "--psweep", "--psweep-select", "omega > 1.5 and n == 32", *workers
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*sweep_sor.py::sweep_sor: 2 psets (of 10: --psweep-select)"])
    df = read_db()
    assert sorted(zip(df["omega"], df["n"])) == [(1.75, 32), (2.0, 32)]
    assert set(df["_sweep"]) == {"sweep_sor.py::sweep_sor"}  # sweep_other has no omega


def test_select_names_that_are_no_parameter_are_a_usage_error(pytester):
    pytester.makepyfile(sweep_sor=SOLVER)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-select", "omgea > 1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--psweep-select 'omgea > 1': no sweep has a parameter 'omgea'; the parameters are k, "
            "n, omega, s*"
        ]
    )
    assert "rows written" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--psweep", "--psweep-select", "__import__('os')")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Call is not allowed*"])
    assert not (pytester.path / "calc" / "results.pk").exists()


@pytest.mark.parametrize(
    "text, pset, expected",
    [
        ("a > 1", {"a": 2}, True),
        ("1 < a <= 3", {"a": 3}, True),
        ("1 < a <= 3", {"a": 4}, False),
        ("a in [1, 2] and not b", {"a": 2, "b": False}, True),
        ("m in ('sor', 'cg')", {"m": "cg"}, True),
        ("m not in ['sor']", {"m": "sor"}, False),
        ("2 * a - 1 == b ** 2", {"a": 5, "b": 3}, True),
        ("a % 2 == 0 or b is None", {"a": 1, "b": None}, None),  # "is": not allowed
        ("a > 1", {"b": 2}, False),  # a pset without a does not match
        ("a == None", {"a": None}, True),
        ("h == 0.1", {"h": 0.1}, True),
    ],
)
def test_selection_evaluates_only_what_it_allows(text, pset, expected):
    if expected is None:
        with pytest.raises(PsweepError, match="not allowed"):
            Selection(text)
        return
    assert Selection(text).matches(pset) is expected


def test_selection_refuses_code_and_names_the_pset_it_cannot_compare():
    for text in ("a.real > 1", "a[0] == 1", "(lambda: 1)()", "[x for x in a]", "a = 1"):
        with pytest.raises(PsweepError, match="--psweep-select"):
            Selection(text)
    with pytest.raises(PsweepError, match=r"on pset \{'a': 'x'\}: TypeError"):
        Selection("a > 1").matches({"a": "x"})


def test_hints_instead_of_silence(pytester):
    pytester.makepyfile(sweep_sor=SOLVER)
    pytester.makepyfile(
        test_mixed="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("x", [1]))
        def sweep_here(pset):
            pass

        def test_plain():
            pass
        """
    )
    # plain pytest: the tests run, and one line says what was left out
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "psweep: 1 sweep_*.py file (sweep_sor.py) and 1 sweep "
            "(test_mixed.py::sweep_here) left out: run them with pytest --psweep"
        ]
    )
    # a pset mark naming no parameter: a warning listing the parameters
    result = pytester.runpytest_subprocess("--psweep", "-m", "pset(mthod='rk4')")
    result.stdout.fnmatch_lines(
        ["*no sweep has a parameter 'mthod'; the parameters are k, n, omega, s, x*"]
    )
    assert "left out" not in result.stdout.str()


def test_a_sweep_not_named_sweep_is_a_collection_error(pytester):
    pytester.makepyfile(
        sweep_named="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1]))
        def solve(pset):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*sweep_named.py::solve has @ps.sweep but its name does not start with sweep_*"]
    )


def test_a_parameter_with_values_of_different_kinds_in_two_sweeps_warns(pytester):
    pytester.makepyfile(
        sweep_kinds="""
        import numpy as np
        import pytest_psweep as ps

        @ps.sweep(ps.plist("n", [8, 16]))
        def sweep_grid(pset):
            pass

        @ps.sweep(ps.plist("n", [np.int64(100), "auto"]))
        def sweep_samples(pset):
            pass

        @ps.sweep(ps.plist("h", [0.1, 1]))  # int and float: one kind, numbers
        def sweep_h(pset):
            pass

        @ps.sweep(ps.plist("h", [np.float32(0.5)]))
        def sweep_h2(pset):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(passed=7, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*parameter 'n' gets values of different kinds from different sweeps (number from "
            "sweep_kinds.py::sweep_grid, sweep_kinds.py::sweep_samples; str from "
            "sweep_kinds.py::sweep_samples)*"
        ]
    )


OWN_CALC_DIR = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("n", [8, 16, 32]))
    def sweep_grid(pset, pset_dir):
        (pset_dir / "grid.txt").write_text(str(pset["n"]))
        return {{"h": 1 / pset["n"]}}

    @ps.sweep(ps.plist("n", [100, "auto"]), calc_dir="{calc_dir}")
    def sweep_samples(pset, pset_dir):
        (pset_dir / "samples.txt").write_text(str(pset["n"]))
        return {{"mean": 0.5}}
"""


@pytest.mark.long
def test_a_sweep_with_a_calc_dir_of_its_own_keeps_its_rows_apart(pytester, workers):
    pytester.makepyfile(sweep_two=OWN_CALC_DIR.format(calc_dir="samples/calc"))
    result = pytester.runpytest_subprocess("--psweep", *workers)
    result.assert_outcomes(passed=5)  # no mixed-kinds warning: two databases
    result.stdout.fnmatch_lines(
        [f"*{pytester.path}/calc/results.pk, {pytester.path}/samples/calc/results.pk: *5 rows*"]
    )
    grid = ps.df_read(pytester.path / "calc" / "results.pk")
    samples = ps.df_read(pytester.path / "samples" / "calc" / "results.pk")
    assert sorted(grid["n"]) == [8, 16, 32] and grid["n"].dtype.kind == "i"
    assert set(samples["n"]) == {100, "auto"} and len(samples) == 2
    assert set(samples["_calc_dir"]) == {str(pytester.path / "samples" / "calc")}
    for pset_id, n in zip(samples["_pset_id"], samples["n"]):  # pset_dir: its own folder
        assert (pytester.path / "samples" / "calc" / pset_id / "samples.txt").read_text() == str(n)
    assert grid["_run_id"].iloc[0] == samples["_run_id"].iloc[0]  # one session, one run
    # the sweep module is kept beside each database, and never collected from there
    assert list((pytester.path / "samples" / "calc" / "backup_script").rglob("sweep_two.py"))

    again = pytester.runpytest_subprocess("--psweep", "--psweep-skip-dups", *workers)
    again.assert_outcomes(skipped=5)
    dry = pytester.runpytest_subprocess("--psweep", "--collect-only")
    dry.stdout.fnmatch_lines(["*sweep_two.py::sweep_samples: 0 new, 2 done*"])
    compared = pytester.runpytest_subprocess("--psweep", "--psweep-compare", *workers)
    compared.assert_outcomes(passed=5)
    compared.stdout.fnmatch_lines(["*compared with*: 5 same, 0 differ, 0 new*"])


def test_a_sweep_s_calc_dir_at_the_rootdir_is_a_collection_error(pytester):
    pytester.makepyfile(sweep_two=OWN_CALC_DIR.format(calc_dir="."))
    result = pytester.runpytest_subprocess("--psweep")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*sweep_two.py::sweep_samples: calc_dir='.' is *rootdir*"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("n == 10**10**8", "more than 65536 bits"),
        ("n == 7**(10**6)", "more than 65536 bits"),
        ("n == (2**60) * (2**60) * (2**60) * 2**65500", "more than 65536 bits"),
        ("'x' * 10**12 == 'x'", "str of more than 65536 items"),
        ("n in [0] * 10**9", "list of more than 65536 items"),
        (" or ".join(["n == 1"] * 400), "more than 1000 terms"),
        ("(" * 300 + "n" + ")" * 300, "too many nested parentheses"),
        ("-" * 1500 + "n == 1", "more than 1000 terms"),
        ("n == " + "1" * 20_000, "more than 10000"),
    ],
)
def test_selection_is_bounded(text, message):
    import time

    start = time.monotonic()
    with pytest.raises(PsweepError, match=message):
        Selection(text).matches({"n": 16})
    assert time.monotonic() - start < 1
    assert Selection("n == 10**3 * 2**4").matches({"n": 16000})  # small numbers work


def test_a_huge_power_in_select_is_a_usage_error_not_a_hang(pytester):
    pytester.makepyfile(sweep_sor=SOLVER)
    result = pytester.runpytest_subprocess(
        "--psweep", "--psweep-select", "n == 10**10**8", timeout=60
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, in seconds
    result.stdout.fnmatch_lines(["*--psweep-select 'n == 10**10**8'*more than 65536 bits*"])
