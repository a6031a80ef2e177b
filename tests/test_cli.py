"""The `psweep` command on a real database: as a real subprocess (the installed entry
point, exit codes, stderr, a closed pipe), and, where a test checks what an option
selects or writes, through ``cli.main`` in this process: each subprocess costs 0.3
CPU-s and would check the same code again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import pytest_psweep as ps
from tests.processes import (
    make_study,
    psweep_here,
    run_session,
    start_script,
    stop,
    wait_for_journal,
    wait_for_line,
)

PSWEEP = shutil.which("psweep")


@pytest.fixture
def calc(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ps.run(lambda p: {"r": p["a"] * 2}, ps.plist("a", [1, 2, 3]))
    ps.run(lambda p: {"r": p["a"] * 2}, ps.plist("a", [4, 5]))
    return tmp_path / "calc"


def psweep(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert PSWEEP is not None, "the psweep command is not installed (pip install -e .)"
    done = subprocess.run([PSWEEP, *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def psweep_main(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    """``psweep ARGS`` through ``cli.main`` in this process: its stdout and stderr."""
    done = psweep_here(capsys, *args)
    assert done.returncode == code, done.stderr
    return done.stdout, done.stderr


def test_show_prints_params_results_and_counters(calc):
    out = psweep("show").stdout.splitlines()
    assert out[0].split() == ["a", "r", "_run_seq", "_pset_seq"]
    assert [line.split() for line in out[1:6]] == [
        ["1", "2", "0", "0"],
        ["2", "4", "0", "1"],
        ["3", "6", "0", "2"],
        ["4", "8", "1", "3"],
        ["5", "10", "1", "4"],
    ]
    assert out[-1] == "[5 rows]"


def test_show_cols_query_last_run(calc, capsys):
    shown, _ = psweep_main(
        capsys,
        "show",
        str(calc / "results.pk"),
        "--cols",
        "a",
        "_pset_id",
        "--query",
        "a >= 2",
        "--last-run",
    )
    out = shown.splitlines()
    assert out[0].split() == ["a", "_pset_id"]
    assert [line.split()[0] for line in out[1:-1]] == ["4", "5"]


def test_show_unknown_column_is_a_one_line_error(calc):
    done = psweep("show", "--cols", "nope", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("psweep: error: --cols: no column 'nope'")
    assert len(done.stderr.splitlines()) == 1


def test_export_by_suffix(calc, tmp_path, capsys):
    psweep("export", "calc", "out.csv")
    assert list(pd.read_csv(tmp_path / "out.csv")["r"]) == [2, 4, 6, 8, 10]
    psweep_main(capsys, "export", "calc/results.pk", "out.json")
    exported = json.loads((tmp_path / "out.json").read_text())  # plain JSON, any reader
    column = exported["columns"].index("a")
    assert [row[column] for row in exported["data"]] == [1, 2, 3, 4, 5]
    assert list(ps.df_read(tmp_path / "out.json", fmt="json")["r"]) == [2, 4, 6, 8, 10]
    _, err = psweep_main(capsys, "export", "calc", "out.xlsx", code=1)
    assert "use .csv, .json or .parquet" in err


def test_export_parquet_without_pyarrow_says_so(calc, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails
    _, err = psweep_main(capsys, "export", "calc", "out.parquet", code=1)
    assert err.strip() == ("psweep: error: export to Parquet needs pyarrow: pip install pyarrow")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    "command", [["show", "missing"], ["export", "missing", "x.csv"], ["recover", "missing"]]
)
def test_missing_file_is_a_one_line_error(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    if command[0] == "show":  # the command's exit code and stderr, as a process
        done = psweep(*command, check=False)
        assert done.returncode == 1
        err = done.stderr
    else:
        _, err = psweep_main(capsys, *command, code=1)
    assert len(err.splitlines()) == 1 and "missing" in err


def test_unreadable_database_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("calc").mkdir()
    Path("calc/results.pk").write_text("garbage")
    done = psweep("show", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("psweep: error: database calc/results.pk cannot be read")
    assert len(done.stderr.splitlines()) == 1


def test_recover_merges_journal_of_a_killed_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("study.py").write_text(
        textwrap.dedent("""
        import time
        import pytest_psweep as ps

        def func(pset):
            if pset["a"] == 3:
                print("ready", flush=True)
                time.sleep(60)
            return {"r": pset["a"]}

        ps.run(func, ps.plist("a", range(6)))
    """)
    )
    proc = start_script("study.py")
    wait_for_line(proc, "ready")
    wait_for_journal(Path("calc"), finished=3, running=[3])
    stop(proc)
    waiting = psweep("show", "calc", check=False)
    assert waiting.returncode == 1
    # 3 finished rows, and a=3, which was running when the process was killed
    assert "4 rows of an interrupted run wait in calc/journal" in waiting.stderr
    assert "'psweep recover calc'" in waiting.stderr
    assert psweep("recover", "calc").stdout.strip() == "recovered 4 rows into calc/results.pk"
    recovered = ps.df_read("calc/results.pk")
    assert list(recovered["a"]) == [0, 1, 2, 3]
    assert list(recovered["_outcome"].fillna("")) == ["", "", "", "crashed"]
    out, _ = psweep_main(capsys, "recover", "calc")
    assert out.strip() == "recovered 0 rows into calc/results.pk"


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    """Two sweeps with different parameters, a pset run twice, a failure: run once for
    the tests that read it (each exports into a file of its own name)."""
    folder = make_study(
        tmp_path_factory.mktemp("study"),
        sweep_two="""
        import os
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2, 3]))
        def sweep_a(pset):
            assert pset["a"] != 3 or os.environ.get("FIXED"), "a=3 diverged"
            return {"r": pset["a"] * 10}

        @ps.sweep(ps.plist("n", [5]))
        def sweep_n(pset):
            return {"m": pset["n"]}
        """,
    )
    for fixed in ("", "1"):
        run_session(folder, "-q", env={**os.environ, "FIXED": fixed})
    return folder


@pytest.fixture
def study(study_folder, monkeypatch):
    """The study's calc dir, with its folder the working directory."""
    monkeypatch.chdir(study_folder)
    return study_folder / "calc"


# the tests of the one study on one xdist worker (--dist loadgroup): it runs once
ONE_STUDY = pytest.mark.xdist_group("cli_study")


@ONE_STUDY
def test_show_selects_latest_failed_sweep_and_sorts(study, capsys):
    everything = ps.df_read(study / "results.pk")
    assert len(everything) == 8
    latest, _ = psweep_main(capsys, "show", "--latest", "--sort", "r", "--reverse")
    lines = latest.splitlines()
    assert lines[0].split() == ["a", "r", "n", "m", "_run_seq", "_pset_seq", "_outcome", "_sweep"]
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["3", "30"],  # integers shown as such, though sweep_n's rows lack them
        ["2", "20"],
        ["1", "10"],
    ]
    assert lines[-1] == "[4 rows]"
    assert len(ps.df_latest(everything)) == 4  # the same from Python
    failed, _ = psweep_main(capsys, "show", "--failed")
    assert "_error" in failed.splitlines()[0] and "a=3 diverged" in failed
    assert "[1 row]" in failed
    # columns that have no value in the rows shown are left out
    only_n = psweep_main(capsys, "show", "--sweep", "sweep_n")[0].splitlines()
    assert only_n[0].split() == ["n", "m", "_run_seq", "_pset_seq", "_outcome", "_sweep"]
    assert only_n[-1] == "[2 rows]"
    _, bad = psweep_main(capsys, "show", "--sort", "nope", code=1)
    assert "--sort: no column 'nope'" in bad


@ONE_STUDY
def test_show_into_a_closed_pipe_is_no_error(study):
    done = subprocess.run(
        f"{PSWEEP} show | head -n 1", shell=True, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == "a" and done.stderr == ""


@ONE_STUDY
def test_export_latest_with_relative_paths(study, capsys):
    psweep_main(
        capsys, "export", "calc", "latest.csv", "--latest", "--query", "_outcome == 'passed'"
    )
    df = pd.read_csv(study.parent / "latest.csv")
    assert len(df) == 4 and set(df["_calc_dir"]) == {"calc"}
    psweep_main(capsys, "export", "calc", "all.json", "--absolute-paths")
    df = ps.df_read(study.parent / "all.json", fmt="json")
    assert len(df) == 8 and set(df["_calc_dir"]) == {str(study)}


@ONE_STUDY
def test_export_orders_columns_as_show_and_drops_other_sweeps(study, capsys):
    psweep_main(capsys, "export", "calc", "n.csv", "--sweep", "sweep_n")
    columns = list(pd.read_csv(study.parent / "n.csv").columns)
    shown = psweep_main(capsys, "show", "--sweep", "sweep_n")[0].splitlines()[0].split()
    assert (
        columns[: len(shown)] == shown == ["n", "m", "_run_seq", "_pset_seq", "_outcome", "_sweep"]
    )
    assert "a" not in columns and "r" not in columns  # the other sweep's: empty here
    assert {"_pset_hash", "_time_utc", "_calc_dir"} <= set(columns[len(shown) :])
    psweep_main(capsys, "export", "calc", "every.csv", "--sweep", "sweep_n", "--all-columns")
    every = list(pd.read_csv(study.parent / "every.csv").columns)
    assert every == list(ps.df_read(study / "results.pk").columns)
    # a baseline exported for one sweep still compares: its key columns are there
    psweep_main(capsys, "export", "calc", "n.json", "--sweep", "sweep_n")
    baseline = ps.df_read(study.parent / "n.json", fmt="json")
    assert {"_sweep", "_pset_hash"} <= set(baseline.columns) and len(baseline) == 2


def _loop(pset):
    value = [pset["a"]]
    value.append(value)  # a list that contains itself
    return {"loop": value}


def test_export_to_json_of_a_value_containing_itself_names_row_and_column(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    ps.run(lambda p: {"r": 1}, ps.plist("a", [1]))
    df = ps.run(_loop, ps.plist("a", [2]))
    done = psweep("export", "calc", "out.json", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    pset_id = df["_pset_id"].iloc[1]
    assert f"row 1 (_pset_id {pset_id}), column 'loop': its value contains itself" in done.stderr
    assert not (tmp_path / "out.json").exists()
    left_out, _ = psweep_main(
        capsys, "export", "calc", "out.json", "--query", f"_pset_id != '{pset_id}'"
    )
    assert "wrote 1 row" in left_out
    assert "wrote 2 rows" in psweep_main(capsys, "export", "calc", "out.csv")[0]
