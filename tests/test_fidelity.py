"""A row says what ran (issue 21, item 1): integers stay integers and booleans
booleans when sweeps with different parameters share one database, in the database,
in ``psweep show``, in JSON, and in the node ids the plugin prints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pytest_psweep as ps
from pytest_psweep import cli
from tests.processes import make_study, run_session

TWO_SWEEPS = """
    import time
    import pytest_psweep as ps

    @ps.sweep(ps.grid(nsamples=[1000000, 2000000], seed=[16], label=["a b"]))
    def sweep_mc(pset):
        time.sleep(0.05 * pset["nsamples"] / 1000000)
        return {"hits_": pset["nsamples"] // 2, "ok_": True}

    @ps.sweep(ps.grid(x=[0.5], flag=[True, False]))
    def sweep_other(pset):
        return {"y_": pset["x"] * 2}
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """The node ids ``pytest --psweep --co -q`` lists for TWO_SWEEPS (collected once:
    both variants of the test below have the same)."""
    folder = make_study(tmp_path_factory.mktemp("collected"), sweep_two=TWO_SWEEPS)
    result = run_session(folder, "--co", "-q")
    assert result.ret == pytest.ExitCode.OK, result.outlines
    return result.outlines


@pytest.mark.xdist_group("fidelity_collected")
def test_ints_and_bools_keep_their_dtypes_across_sweeps(
    pytester, read_db, workers, capsys, collected
):
    pytester.makepyfile(sweep_two=TWO_SWEEPS)
    pytester.runpytest_subprocess("--psweep", *workers).assert_outcomes(passed=4)
    df = read_db()
    assert df["nsamples"].dtype == "Int64" and df["seed"].dtype == "Int64"
    assert df["hits_"].dtype == "Int64" and df["ok_"].dtype == "boolean"
    assert df["flag"].dtype == "boolean" and df["x"].dtype == np.float64
    mc = df[df["_sweep"].str.endswith("sweep_mc")]
    assert mc["nsamples"].tolist() == [1000000, 2000000]
    assert df["nsamples"].isna().sum() == 2
    # a second run appends: the dtypes stay
    pytester.runpytest_subprocess("--psweep", *workers).assert_outcomes(passed=4)
    again = read_db()
    assert again.dtypes.equals(df.dtypes)
    # psweep show prints what ran
    assert cli.main(["show", "--sweep", "sweep_mc"]) == 0  # in this process (test_cli)
    shown = capsys.readouterr().out
    assert "1000000" in shown and "1000000.0" not in shown, shown
    # the dry run's slowest lines are node ids that exist
    dry = pytester.runpytest_subprocess("--psweep", "--psweep-simulate", *workers)
    slowest = [line for line in dry.outlines if "slowest:" in line]
    assert slowest, dry.outlines
    assert "sweep_two.py::sweep_mc[nsamples=2000000-seed=16-label=#" in slowest[0], slowest
    for line in slowest:
        assert line.split()[1] in collected, (line, collected)


def test_df_read_returns_the_dtypes_written(tmp_path):
    df = ps.run(lambda p: {"r": p["a"] * 2}, ps.plist("a", [1, 2]), calc_dir=tmp_path)
    df = ps.run(lambda p: {"ok": p["b"] > 0, "big": 2**70}, ps.plist("b", [3]), calc_dir=tmp_path)
    assert df["a"].dtype == "Int64" and df["r"].dtype == "Int64"
    assert df["b"].dtype == "Int64" and df["ok"].dtype == "boolean"
    assert df["big"].dtype == object  # beyond int64: kept as Python ints
    assert df["big"].iloc[-1] == 2**70
    read = ps.df_read(tmp_path / "results.pk")
    pd.testing.assert_frame_equal(read, df)
    ps.df_write(df, tmp_path / "db.json", fmt="json")
    back = ps.df_read(tmp_path / "db.json", fmt="json")
    assert back.dtypes.equals(df.dtypes)
    # JSON has one null: an object column's missing values come back as None
    assert back["big"].isna().tolist() == df["big"].isna().tolist()
    pd.testing.assert_frame_equal(back.drop(columns="big"), df.drop(columns="big"))


@pytest.mark.parametrize("other", [[0.5], ["text"]])
def test_a_column_of_ints_and_other_values_holds_them_as_they_are(tmp_path, other):
    ps.run(lambda p: {}, ps.plist("a", [1]), calc_dir=tmp_path)
    df = ps.run(lambda p: {}, ps.plist("a", other), calc_dir=tmp_path)
    assert df["a"].tolist() == [1, *other]
    if isinstance(other[0], float):
        assert df["a"].dtype == np.float64  # numbers of both kinds: a float column
