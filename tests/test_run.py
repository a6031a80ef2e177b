"""ps.run (SPEC §3, §4, library half of §6): book-keeping, options, nothing lost."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pytest_psweep as ps
from tests.processes import start_script, stop, wait_for_journal, wait_for_line

BOOKKEEPING = [
    "_run_id",
    "_pset_id",
    "_pset_hash",
    "_pset_seq",
    "_run_seq",
    "_calc_dir",
    "_time_utc",
    "_exec_host",
    "_pset_runtime",
]


pytestmark = pytest.mark.usefixtures("in_tmp")  # each test in a folder of its own


def double(pset):
    return {"r": pset["a"] * 2}


def test_rows_have_params_results_and_bookkeeping():
    df = ps.run(double, ps.plist("a", [1, 2, 3]))
    assert list(df["a"]) == [1, 2, 3]
    assert list(df["r"]) == [2, 4, 6]
    assert set(BOOKKEEPING) <= set(df.columns)
    assert df["_run_id"].nunique() == 1
    assert df["_pset_id"].nunique() == 3
    assert all(uuid.UUID(v).version == 4 for v in df["_pset_id"])
    assert list(df["_pset_hash"]) == [ps.pset_hash({"a": a}) for a in (1, 2, 3)]
    assert list(df["_pset_seq"]) == [0, 1, 2]
    assert list(df["_run_seq"]) == [0, 0, 0]
    assert set(df["_calc_dir"]) == {"calc"}
    assert (df["_pset_runtime"] >= 0).all()
    assert set(df["_exec_host"]) == {os.uname().nodename}


def test_time_utc_is_a_utc_timestamp_and_the_index():
    before = pd.Timestamp.now(tz="UTC")
    df = ps.run(double, ps.plist("a", [1, 2]))
    after = pd.Timestamp.now(tz="UTC")
    assert str(df["_time_utc"].dt.tz) == "UTC"
    assert (df.index == df["_time_utc"]).all()
    assert isinstance(df.index, pd.DatetimeIndex)
    assert before <= df["_time_utc"].min() <= df["_time_utc"].max() <= after


def test_function_sees_bookkeeping_before_it_is_called():
    seen = []

    def func(pset):
        seen.append(dict(pset))

    df = ps.run(func, ps.plist("a", [1]))
    (pset,) = seen
    assert pset["_run_id"] == df["_run_id"].iloc[0]
    assert pset["_pset_id"] == df["_pset_id"].iloc[0]
    assert pset["_pset_hash"] == ps.pset_hash({"a": 1})
    assert pset["_calc_dir"] == "calc"
    assert pd.Timestamp(pset["_time_utc"]) == df["_time_utc"].iloc[0]


def test_returned_pset_is_merged():
    df = ps.run(lambda pset: {**pset, "r": 1}, ps.plist("a", [5]))
    assert df["r"].iloc[0] == 1 and df["a"].iloc[0] == 5


def test_second_run_appends_and_counters_continue():
    first = ps.run(double, ps.plist("a", [1, 2]))
    both = ps.run(double, ps.plist("a", [3, 4, 5]))
    assert len(both) == 5
    assert list(both["_pset_seq"]) == [0, 1, 2, 3, 4]
    assert list(both["_run_seq"]) == [0, 0, 1, 1, 1]
    assert both["_run_id"].nunique() == 2
    pd.testing.assert_frame_equal(both.iloc[:2], first)
    pd.testing.assert_frame_equal(ps.df_read("calc/results.pk"), both)


def test_numeric_columns_keep_numeric_dtypes():
    df = ps.run(lambda p: {"i": p["a"], "f": p["a"] / 2, "b": p["a"] > 1}, ps.plist("a", [1, 2]))
    df = ps.run(lambda p: {"i": p["a"], "f": p["a"] / 2, "b": p["a"] > 1}, ps.plist("a", [3]))
    assert df["a"].dtype == np.int64
    assert df["i"].dtype == np.int64
    assert df["f"].dtype == np.float64
    assert df["b"].dtype == bool
    assert df["_pset_seq"].dtype == np.int64
    assert df["_pset_runtime"].dtype == np.float64


def test_sweeps_with_different_params_share_one_database():
    ps.run(double, ps.plist("a", [1]))
    df = ps.run(lambda p: {"s": p["b"]}, ps.plist("b", ["x"]))
    assert len(df) == 2
    assert pd.isna(df["b"].iloc[0]) and pd.isna(df["a"].iloc[1])


def test_df_argument_appends_in_memory_and_save_false_writes_nothing():
    first = ps.run(double, ps.plist("a", [1]), save=False)
    both = ps.run(double, ps.plist("a", [2]), df=first, save=False)
    assert list(both["a"]) == [1, 2]
    assert list(both["_run_seq"]) == [0, 1]
    assert not Path("calc").exists()


def test_poolsize_runs_in_processes_with_same_rows():
    df = ps.run(
        lambda p: {"r": p["a"] * 2, "pid": os.getpid()}, ps.plist("a", range(8)), poolsize=2
    )
    assert list(df["r"]) == [a * 2 for a in range(8)]
    assert os.getpid() not in set(df["pid"])
    assert df["_pset_id"].nunique() == 8 and df["_run_id"].nunique() == 1


def test_tmpsave_writes_each_row():
    df = ps.run(double, ps.plist("a", [1, 2]), tmpsave=True)
    run_id = df["_run_id"].iloc[0]
    for pset_id, r in zip(df["_pset_id"], df["r"]):
        row = ps.pickle_read(f"calc/tmpsave/{run_id}/{pset_id}.pk")  # a dict, as psweep's
        assert row["r"] == r and row["_pset_id"] == pset_id


def test_simulate_runs_in_copy_without_calling_func():
    ps.run(double, ps.plist("a", [1]))
    before = Path("calc/results.pk").read_bytes()

    def forbidden(pset):
        raise AssertionError("func called while simulating")

    df = ps.run(forbidden, ps.plist("a", [2, 3]), simulate=True)
    assert Path("calc/results.pk").read_bytes() == before
    assert list(df["a"]) == [1, 2, 3]
    assert list(df["_calc_dir"])[1:] == ["calc.simulate", "calc.simulate"]
    assert len(ps.df_read("calc.simulate/results.pk")) == 3
    assert sorted(os.listdir("calc.simulate")) == [
        ".psweep-calc-dir",
        "journal",
        "results.pk",
        "results.pk.lock",
    ]


def test_backup_calc_dir_copies_old_calc_dir():
    old = ps.run(double, ps.plist("a", [1]))
    Path("calc", old["_pset_id"].iloc[0]).mkdir()
    ps.run(double, ps.plist("a", [2]), backup_calc_dir=True)
    stamp = old["_time_utc"].max().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    backup = Path(f"calc_{stamp}")
    assert len(ps.df_read(backup / "results.pk")) == 1
    assert (backup / old["_pset_id"].iloc[0]).is_dir()
    assert len(ps.df_read("calc/results.pk")) == 2


def test_backup_script_copies_driver(tmp_path):
    script = tmp_path / "input.py"
    script.write_text("# my study\n")
    df = ps.run(double, ps.plist("a", [1]), backup_script=str(script))
    run_id = df["_run_id"].iloc[0]
    assert Path(f"calc/backup_script/{run_id}.py").read_text() == "# my study\n"


def test_skip_dups_skips_psets_already_in_database():
    calls = []

    def func(pset):
        calls.append(pset["a"])
        return {"r": pset["a"] * 2}

    ps.run(func, ps.plist("a", [1, 2]), skip_dups=True)
    df = ps.run(func, ps.plist("a", [1.0, 2, 3]), skip_dups=True)
    assert calls == [1, 2, 3]  # results in the row never enter the hash
    assert list(df["a"]) == [1, 2, 3]


def test_stored_hash_is_used_not_recomputed():
    ps.run(double, ps.plist("a", [1]))
    df = ps.df_read("calc/results.pk")
    df["_pset_hash"] = "stored"
    ps.df_write(df, "calc/results.pk")
    calls = []
    ps.run(lambda p: calls.append(p), ps.plist("a", [1]), skip_dups=True)
    assert len(calls) == 1  # the stored hash is the truth, even an odd one


def test_raising_pset_keeps_rows_finished_before_and_propagates():
    def func(pset):
        if pset["a"] == 3:
            raise ValueError("bad a")
        return {"r": pset["a"]}

    with pytest.raises(ValueError, match="bad a") as info:
        ps.run(func, ps.plist("a", [1, 2, 3, 4]))
    df = ps.df_read("calc/results.pk")
    assert list(df["a"]) == [1, 2]
    assert "2 psets finished before were saved" in "".join(info.value.__notes__)
    assert os.listdir("calc/journal") == []


def test_raising_pset_in_pool_keeps_rows_finished_before():
    def func(pset):
        if pset["a"] == 3:
            raise ValueError("bad a")
        return {"r": pset["a"]}

    with pytest.raises(ValueError, match="bad a"):
        ps.run(func, ps.plist("a", [0, 1, 2, 3]), poolsize=2)
    assert list(ps.df_read("calc/results.pk")["a"]) == [0, 1, 2]


def test_collision_with_bookkeeping_rejected_before_anything_runs():
    ps.run(double, ps.plist("a", [1]))
    before = Path("calc/results.pk").read_bytes()
    calls: list[dict[str, Any]] = []
    with pytest.raises(ps.PsweepError, match="'_pset_id'"):
        ps.run(calls.append, [{"a": 2}, {"a": 3, "_pset_id": "x"}])
    assert calls == []
    assert Path("calc/results.pk").read_bytes() == before


@pytest.mark.parametrize(
    "params, message",
    [
        ({"a": 1}, "list of dicts"),
        ([], "empty"),
        ([{"a": 1}, 5], "pset #1"),
        ([{"a": __import__("threading").Lock()}], "'a'"),  # cannot be hashed
    ],
)
def test_bad_params_get_clear_errors(params, message):
    with pytest.raises(ps.PsweepError, match=message):
        ps.run(double, params)


def test_non_dict_return_is_an_error_naming_function_and_pset():
    ps.run(double, ps.plist("a", [1]))
    with pytest.raises(ps.PsweepError, match=r"returned a list for pset \{'a': 2\}"):
        # a wrong return type is the point
        ps.run(lambda p: [1] if p["a"] == 2 else None, ps.plist("a", [5, 2]))  # type: ignore[arg-type, return-value]
    assert list(ps.df_read("calc/results.pk")["a"]) == [1, 5]


def returns_list(pset):
    return [1]


def test_non_dict_return_names_the_function():
    with pytest.raises(ps.PsweepError, match="returns_list"):
        ps.run(returns_list, ps.plist("a", [1]))


def test_unpicklable_result_is_an_error_naming_the_key():
    with pytest.raises(ps.PsweepError, match="'handle'"):
        ps.run(lambda p: {"handle": lambda: 1}, ps.plist("a", [1]))


def test_unreadable_database_is_named_and_never_overwritten():
    Path("calc").mkdir()
    Path("calc/results.pk").write_bytes(b"not a pickle at all")
    with pytest.raises(ps.PsweepError, match=r"calc/results.pk"):
        ps.run(double, ps.plist("a", [1]))
    assert Path("calc/results.pk").read_bytes() == b"not a pickle at all"


def test_database_that_is_not_a_dataframe_is_named():
    Path("calc").mkdir()
    Path("calc/results.pk").write_bytes(pickle.dumps({"not": "a frame"}))
    with pytest.raises(ps.PsweepError, match=r"calc/results.pk holds a dict"):
        ps.run(double, ps.plist("a", [1]))


def test_calc_dir_that_is_a_file_is_an_error():
    Path("calc").write_text("oops")
    with pytest.raises(ps.PsweepError, match="calc dir calc is a file"):
        ps.run(double, ps.plist("a", [1]))


class Exploding:
    """Pickles halfway, then fails: a write that dies in the middle."""

    def __reduce__(self):
        raise RuntimeError("disk full")


def test_failed_write_leaves_old_database_intact():
    df = ps.run(double, ps.plist("a", [1, 2]))
    before = Path("calc/results.pk").read_bytes()
    broken = df.copy()
    broken["x"] = [1, Exploding()]
    with pytest.raises(RuntimeError, match="disk full"):
        ps.df_write(broken, "calc/results.pk")
    assert Path("calc/results.pk").read_bytes() == before
    assert sorted(os.listdir("calc")) == [
        ".psweep-calc-dir",
        "journal",
        "results.pk",
        "results.pk.lock",
    ]


def test_json_format_round_trip():
    df = ps.run(double, ps.plist("a", [1, 2]))
    ps.df_write(df, "db.json", fmt="json")
    back = ps.df_read("db.json", fmt="json")
    assert list(back["r"]) == [2, 4]
    assert list(back["_pset_id"]) == list(df["_pset_id"])


DRIVER = """
import sys, time
import pytest_psweep as ps

def func(pset):
    if pset["a"] >= {stop_at}:
        print("ready", flush=True)
        time.sleep(60)
    time.sleep({sleep})
    return {{"r": pset["a"] * 2, "tag": sys.argv[1]}}

ps.run(func, ps.plist("a", range({n})))
"""


def driver(path: Path, n: int, stop_at: int = 10**9, sleep: float = 0.0) -> Path:
    path.write_text(textwrap.dedent(DRIVER.format(n=n, stop_at=stop_at, sleep=sleep)))
    return path


def test_killed_run_loses_no_finished_row(in_tmp):
    script = driver(in_tmp / "study.py", n=10, stop_at=4)
    proc = start_script(str(script), "killed")
    wait_for_line(proc, "ready")
    stop(proc)
    assert not Path("calc/results.pk").exists()

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pytest_psweep as ps; ps.run(lambda p: {'tag': 'next'}, [{'a': 100}])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # 4 finished rows, and the pset that was running when the process died: crashed
    assert "merged 5 rows left by an interrupted run" in result.stderr
    df = ps.df_read("calc/results.pk")
    assert list(df["a"]) == [0, 1, 2, 3, 4, 100]
    assert list(df["r"].iloc[:4]) == [0, 2, 4, 6] and pd.isna(df["r"].iloc[4])
    assert list(df.loc[df["_outcome"] == "crashed", "a"]) == [4]
    assert "process running this pset died" in df["_error"].iloc[4]
    # its book-keeping as the finished rows': it ran here, for no measured time
    assert df["_exec_host"].iloc[4] == df["_exec_host"].iloc[0]
    assert df["_pset_runtime"].iloc[4] == 0.0 and df["_pset_runtime"].iloc[0] > 0
    assert list(df["_pset_seq"]) == [0, 1, 2, 3, 4, 5]
    assert list(df["_run_seq"]) == [0, 0, 0, 0, 0, 1]
    assert os.listdir("calc/journal") == []


def test_two_runs_at_once_keep_all_rows(in_tmp):
    script = driver(in_tmp / "study.py", n=40, sleep=0.005)
    procs = [subprocess.Popen([sys.executable, str(script), tag]) for tag in ("one", "two")]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    df = ps.df_read("calc/results.pk")
    assert len(df) == 80
    assert df.groupby("tag").size().to_dict() == {"one": 40, "two": 40}
    assert sorted(df["_run_seq"].unique()) == [0, 1]
    assert list(df["_pset_seq"]) == list(range(80))


def test_recovery_does_not_merge_a_live_runs_journal(in_tmp):
    script = driver(in_tmp / "study.py", n=10, stop_at=3)
    proc = start_script(str(script), "live")
    try:
        wait_for_line(proc, "ready")
        wait_for_journal(in_tmp / "calc", finished=3, running=[3])
        df = ps.run(double, ps.plist("a", [50]))
        assert list(df["a"]) == [50]  # the live run's 3 rows stay in its journal
    finally:
        stop(proc)
    df = ps.run(double, ps.plist("a", [51]))
    # merged once its run was killed: 3 rows, and a=3, which was running, crashed
    assert sorted(df["a"]) == [0, 1, 2, 3, 50, 51]
    assert list(df.loc[df["_outcome"] == "crashed", "a"]) == [3]


def test_verbose_prints_each_row_or_chosen_columns(capsys):
    ps.run(double, ps.plist("a", [1, 2]), verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "'r': 2" in lines[0] and "'_pset_id'" in lines[0]
    ps.run(double, ps.plist("a", [3]), verbose=["a", "r"])
    assert capsys.readouterr().out.strip() == "{'a': 3, 'r': 6}"


BIG_PARAMS = """
import os, signal
import pytest_psweep as ps

def func(pset):
    os.kill(os.getpid(), signal.SIGKILL)  # the first pset takes its process down

ps.run(func, [{"a": a, "blob": bytes([a]) * (4 << 20)} for a in range(40)])
"""


def test_psets_with_big_params_are_planned_a_few_at_a_time(in_tmp):
    # 40 psets of 4 MB each: planned all in one journal record, that record would
    # hold 160 MB (and 1024 such psets more than a record can) before the first ran
    script = in_tmp / "study.py"
    script.write_text(BIG_PARAMS)
    assert subprocess.run([sys.executable, str(script)], timeout=120).returncode == -9
    (path,) = (in_tmp / "calc" / "journal").glob("*.jnl")
    blob = path.read_bytes()
    assert len(blob) < 40 << 20  # the psets planned before the first one ran
    df = ps.run(double, ps.plist("a", [100]))
    assert list(df["a"]) == [0, 100]
    assert list(df["_outcome"].fillna("")) == ["crashed", ""]
    assert df["blob"].iloc[0] == bytes([0]) * (4 << 20)


def test_a_ctrl_c_just_after_a_rows_journal_write_keeps_that_row(in_tmp, monkeypatch):
    # a Ctrl-C's KeyboardInterrupt raised just after the second row's record was
    # written, before the run counted it: that row is whole in the journal, and
    # ps.run's own finish must take it from there
    from pytest_psweep import journal

    real_append = journal.Journal.append
    rows_written = []

    def append(self: journal.Journal, record: bytes) -> None:
        real_append(self, record)
        if record[len(journal._MAGIC) : len(journal._MAGIC) + 1] == journal.FINISHED:
            rows_written.append(record)
            if len(rows_written) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(journal.Journal, "append", append)
    with pytest.raises(KeyboardInterrupt):
        ps.run(lambda pset: {"r": pset["a"] * 2}, ps.plist("a", [1, 2, 3]))
    df = ps.df_read(in_tmp / "calc" / "results.pk")
    assert list(df["r"]) == [2, 4]
    assert not list((in_tmp / "calc" / "journal").glob("*.jnl"))
