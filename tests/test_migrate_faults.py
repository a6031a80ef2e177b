"""``psweep migrate`` on psweep databases in odd forms (issue 21, item 5): missing
counters, times that are no times, columns named twice. Each is converted or refused
with the next step named, never a traceback, and the calc dir is usable after."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pytest_psweep as ps


def psweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("psweep")
    assert command is not None, "the psweep command is not installed (pip install -e .)"
    return subprocess.run([command, *args], capture_output=True, text=True, cwd=cwd)


def legacy(tmp_path: Path, rows: list[list[Any]], columns: list[str]) -> Path:
    """A calc dir holding psweep's database.pk: every column of dtype object."""
    calc = tmp_path / "calc"
    calc.mkdir()
    pd.DataFrame(rows, columns=columns).astype(object).to_pickle(calc / "database.pk")
    return calc


COLUMNS = ["a", "_time_utc", "_pset_seq", "_run_seq", "_run_id", "_pset_id"]


def test_missing_counters_are_numbered_on(tmp_path):
    rows = [
        [1, "2020-01-01", 0, np.nan, "r1", "p1"],
        [2, "2020-01-02", np.nan, 0, "r1", "p2"],
        [3, "2020-01-03", np.nan, np.nan, "r2", "p3"],
    ]
    calc = legacy(tmp_path, rows, COLUMNS)
    refused = subprocess.run(
        [
            "python",
            "-c",
            f"import pytest_psweep as ps; ps.run(lambda p: {{}}, [{{}}], calc_dir='{calc}')",
        ],
        capture_output=True,
        text=True,
    )
    assert f"psweep migrate {calc}" in refused.stderr
    done = psweep("migrate", str(calc), cwd=tmp_path)
    assert done.returncode == 0 and "migrated 3 rows" in done.stdout, done.stderr
    df = ps.df_read(calc / "results.pk")
    assert df["_pset_seq"].tolist() == [0, 1, 2] and df["_pset_seq"].dtype == np.int64
    assert df["_run_seq"].tolist() == [0, 0, 1]  # a row without one takes its run's
    df = ps.run(lambda p: {}, ps.plist("a", [4]), calc_dir=str(calc))  # the calc dir works
    assert df["_pset_seq"].tolist() == [0, 1, 2, 3] and df["_run_seq"].iloc[-1] == 2


def test_times_that_are_no_times_are_refused_then_filled(tmp_path):
    rows = [
        [1, "2020-01-01", 0, 0, "r1", "p1"],
        [2, "junk", 1, 0, "r1", "p2"],
        [3, pd.NaT, 2, 0, "r1", "p3"],
    ]
    calc = legacy(tmp_path, rows, COLUMNS)
    before = (calc / "database.pk").read_bytes()
    refused = psweep("migrate", str(calc), cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "2 of 3 rows have a _time_utc that is no time (row 1: 'junk'" in refused.stderr
    assert f"psweep migrate {calc} --fill-times" in refused.stderr
    assert (calc / "database.pk").read_bytes() == before
    done = psweep("migrate", str(calc), "--fill-times", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    df = ps.df_read(calc / "results.pk")
    assert (df["_time_utc"] == pd.Timestamp("2020-01-01", tz="UTC")).all()
    assert df["_psweep_time_utc"].tolist()[1] == "junk"
    assert pd.isna(df["_psweep_time_utc"].iloc[0])


def test_columns_named_twice(tmp_path):
    columns = ["a", "a", "_time_utc", "_pset_seq", "_run_seq", "_run_id"]
    same = legacy(tmp_path, [[1, 1, "2020-01-01", 0, 0, "r"]], columns)
    done = psweep("migrate", str(same), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(ps.df_read(same / "results.pk").columns).count("a") == 1
    shutil.rmtree(tmp_path / "calc")
    differ = legacy(tmp_path, [[1, 2, "2020-01-01", 0, 0, "r"]], columns)
    refused = psweep("migrate", str(differ), cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "2 columns named 'a' with different values" in refused.stderr
    assert f"ps.df_read('{differ / 'database.pk'}')" in refused.stderr
    assert not (differ / "results.pk").exists()


@pytest.mark.parametrize("command", ["show", "export"])
def test_the_cli_on_an_unmigrated_calc_dir_names_migrate(tmp_path, command):
    calc = legacy(tmp_path, [[1, "2020-01-01", 0, 0, "r1", "p1"]], COLUMNS)
    args = [command, str(calc)] + (["out.csv"] if command == "export" else [])
    done = psweep(*args, cwd=tmp_path)
    assert done.returncode == 1 and f"'psweep migrate {calc}'" in done.stderr, done.stderr
