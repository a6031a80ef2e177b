"""A row is true to what ran (issue 21 items 2 and 3) and the function sees what
psweep's sees (issue 25 item 3): for ``ps.run``, its executors and pytest sweeps."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pandas as pd
import psweep
import pytest

import pytest_psweep as ps

# -- what the function sees ------------------------------------------------------------


def test_the_function_sees_psweeps_fields_in_psweeps_order(in_tmp):
    seen: dict[str, list[dict[str, Any]]] = {"psweep": [], "ours": []}

    def spy(into):
        def func(pset):
            into.append(dict(pset))
            return {"r_": pset["a"]}

        return func

    psweep.run(spy(seen["psweep"]), ps.plist("a", [1, 2]), calc_dir="theirs")
    df = ps.run(spy(seen["ours"]), ps.plist("a", [1, 2]))
    df = ps.run(spy(seen["ours"]), ps.plist("a", [3]))
    theirs, ours = seen["psweep"][0], seen["ours"][-1]
    assert list(ours) == list(theirs)
    assert [type(ours[key]) for key in ours if key != "_time_utc"] == [
        type(theirs[key]) for key in theirs if key != "_time_utc"
    ]
    assert isinstance(ours["_time_utc"], pd.Timestamp) and str(ours["_time_utc"].tz) == "UTC"
    # and they are the row's values, the counters included
    row = df.iloc[-1].to_dict()
    assert {key: row[key] for key in ours} == ours
    assert (ours["_pset_seq"], ours["_run_seq"]) == (2, 1)
    assert list(df.columns) == [*ours, "r_", "_pset_runtime"]


def test_tmpsave_holds_the_row(in_tmp):
    ps.run(lambda pset: {"r_": 1.5}, ps.plist("a", [1]))
    df = ps.run(lambda pset: {"r_": 2.5}, ps.plist("a", [1, 2]), tmpsave=True)
    for row in df[df["_run_seq"] == 1].to_dict("records"):
        saved = ps.pickle_read(f"calc/tmpsave/{row['_run_id']}/{row['_pset_id']}.pk")
        assert saved == row and list(saved) == list(row)


def _seen_by_executor(pset):
    return {"keys_": ",".join(pset), "time_": type(pset["_time_utc"]).__name__}


def test_a_pool_worker_sees_what_a_serial_run_sees(in_tmp):
    serial = ps.run(_seen_by_executor, ps.plist("a", [1, 2]), save=False)
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        pooled = ps.run(_seen_by_executor, ps.plist("a", [1, 2]), save=False, executor=pool)
    assert pooled["keys_"].tolist() == serial["keys_"].tolist()
    assert set(pooled["time_"]) == {"Timestamp"}


# -- issue 21 item 2: a returned key that is a parameter ------------------------------


def test_a_returned_parameter_with_another_value_fails_the_pset(in_tmp):
    with pytest.raises(ps.PsweepError, match=r"'a'=10 \(ran with 1\)"):
        ps.run(lambda pset: {"a": pset["a"] * 10, "r_": 1}, ps.plist("a", [1, 2]))
    with pytest.raises(ps.PsweepError, match=r"'a'=20 \(ran with 2\)"):
        ps.run(
            lambda pset: {"a": pset["a"] * 10} if pset["a"] == 2 else {"r_": 0},
            ps.plist("a", [1, 2]),
        )
    df = ps.df_read("calc/results.pk")
    assert df["a"].tolist() == [1]  # the pset before the failing one; a kept as it ran
    assert df["_pset_hash"].tolist() == [ps.pset_hash({"a": 1})]


def test_returning_the_pset_itself_as_psweep_does_is_fine(in_tmp):
    def func(pset):
        pset.update(r_=pset["a"] * 10)
        return pset

    df = ps.run(func, ps.plist("a", [1, 2]))
    assert df["a"].tolist() == [1, 2] and df["r_"].tolist() == [10, 20]

    def changes_a(pset):
        pset.update(a=pset["a"] * 10)
        return pset

    with pytest.raises(ps.PsweepError, match=r"'a'=10 \(ran with 1\)"):
        ps.run(changes_a, ps.plist("a", [1]))


# -- issue 21 item 3: the function changes its pset -----------------------------------


def _clear(pset):
    pset.clear()
    return {"r_": 1}


def _delete(pset):
    del pset["a"], pset["_pset_id"]
    return {"r_": 1}


def _reassign(pset):
    pset["a"] = 99
    pset["b"] = "other"
    return {"r_": 1}


@pytest.mark.parametrize("func", [_clear, _delete, _reassign])
def test_the_row_keeps_the_parameters_the_pset_ran_with(in_tmp, func):
    params = ps.pgrid(ps.plist("a", [1, 2]), ps.plist("b", ["x"]))
    df = ps.run(func, params)
    assert df[["a", "b", "r_"]].values.tolist() == [[1, "x", 1], [2, "x", 1]]
    assert df["_pset_hash"].tolist() == [ps.pset_hash(p) for p in params]
    assert df["_pset_id"].notna().all()
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        pooled = ps.run(func, params, save=False, executor=pool)
    assert pooled[["a", "b", "r_"]].values.tolist()[2:] == [[1, "x", 1], [2, "x", 1]]


# -- the same under pytest ---------------------------------------------------------------

SWEEPS = """
import pytest_psweep as ps

@ps.sweep(ps.plist("a", [1, 2]))
def sweep_returns_a(pset):
    return {"a": pset["a"] * 10 if pset["a"] == 2 else pset["a"], "r_": 1}

@ps.sweep(ps.plist("a", [1, 2]))
def sweep_clears(pset):
    pset.clear()
    return {"r_": 2}

@ps.sweep(ps.plist("a", [1, 2]))
def sweep_reassigns(pset):
    pset["a"] = 99
    del pset["_pset_id"]
    return {"r_": 3}
"""


def test_under_pytest_rows_keep_what_ran(pytester, read_db, workers):
    pytester.makepyfile(sweep_rows=SWEEPS)
    result = pytester.runpytest_subprocess("--psweep", *workers)
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*'a'=20 (ran with 2)*"])
    df = read_db()
    by_sweep = {
        name: group.sort_values("a")[["a", "r_", "_outcome"]].values.tolist()
        for name, group in df.groupby(df["_sweep"].str.rsplit("::", n=1).str[-1])
    }
    assert by_sweep == {
        "sweep_returns_a": [[1, 1, "passed"], [2, 1, "failed"]],
        "sweep_clears": [[1, 2, "passed"], [2, 2, "passed"]],
        "sweep_reassigns": [[1, 3, "passed"], [2, 3, "passed"]],
    }
    assert df["_pset_hash"].tolist() == [ps.pset_hash({"a": a}) for a in df["a"]]
    assert df["_pset_id"].notna().all()
