"""``ps.run`` when a pset takes its process down, or Ctrl-C comes (issue 21, items 10
and 11): real process pools, a real dask cluster, real signals. The pset that
crashed gets a ``crashed`` row naming it; finished rows are kept; runs where nothing
crashed keep psweep's columns; Ctrl-C returns within seconds."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import pytest_psweep as ps
from tests.processes import copy_study, start_script, stop, wait_for_journal, wait_for_line

pytestmark = pytest.mark.usefixtures("in_tmp")

DRIVER = """
import json, os, pathlib, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
import pytest_psweep as ps
from pytest_psweep import journal

def journaled_before_3(calc_dir):
    rows = 0
    for path in pathlib.Path(calc_dir, "journal").glob("*.jnl"):
        rows += sum(row["x"] < 3 for row in journal.Decoder().feed(path.read_bytes()))
    return rows

def wait_for_0_to_2(calc_dir):
    end = time.monotonic() + 60
    while journaled_before_3(calc_dir) < 3 and time.monotonic() < end:
        time.sleep(0.05)  # x=0..2 finish, and their rows are journaled, first

def func_exit(pset):
    if pset["x"] == 3:
        wait_for_0_to_2("exit/calc")
        os._exit(3)
    time.sleep(0.05)
    return {"y": pset["x"] * 2}

def func_sigkill(pset):
    if pset["x"] == 3:
        wait_for_0_to_2("sigkill/calc")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return {"y": pset["x"] * 2}

def run(how, kill):
    func, calc_dir = {"exit": func_exit, "sigkill": func_sigkill}[kill], kill + "/calc"
    params = ps.plist("x", range(8))
    if how == "pool":
        with ProcessPoolExecutor(2) as executor:
            ps.run(func, params, executor=executor, calc_dir=calc_dir)
    elif how == "poolsize":
        ps.run(func, params, poolsize=2, calc_dir=calc_dir)
    elif how == "dask":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                               dashboard_address=None)
        with cluster, Client(cluster) as client:
            client.run(lambda: None)
            ps.run(func, params, dask_client=client, calc_dir=calc_dir)

if __name__ == "__main__":
    for kill in sys.argv[2:]:  # one run each, into its own calc dir
        try:
            run(sys.argv[1], kill)
        except ps.PsweepError as exc:  # flushed: seen even if a teardown hangs after
            print("ERROR", json.dumps({"kill": kill, "error": str(exc)}), flush=True)
"""

KILLS = ["exit", "sigkill"]


def needs_dask() -> None:
    if importlib.util.find_spec("distributed") is None:
        reason = "dask's distributed is not installed: pip install 'pytest-psweep[dask]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs it: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(how, marks=pytest.mark.xdist_group(f"executor_faults_{how}"))
        for how in ("pool", "poolsize", "dask")
    ],
)
def crashed_runs(request, tmp_path_factory):
    """One driver process per executor running both kinds of kill, each run into its
    own calc dir (``<kill>/calc``): the folder and the errors ps.run raised, by kill."""
    how = request.param
    if how == "dask":
        needs_dask()
    folder = tmp_path_factory.mktemp(how)
    (folder / "driver.py").write_text(DRIVER)
    try:
        done = subprocess.run(
            [sys.executable, "driver.py", how, *KILLS],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired as exc:  # say whether ps.run had returned
        pytest.fail(f"driver.py {how} hung; its output: {exc.stdout!r}; {exc.stderr!r}")
    assert done.returncode == 0, done.stderr
    errors = [json.loads(line[6:]) for line in done.stdout.splitlines() if line[:6] == "ERROR "]
    return how, folder, {error["kill"]: error["error"] for error in errors}, done.stdout


@pytest.mark.parametrize("kill", KILLS)
def test_a_pset_that_kills_its_worker_gets_a_crashed_row(in_tmp, crashed_runs, kill):
    how, folder, errors, stdout = crashed_runs
    assert kill in errors, f"driver.py {how}: no error for {kill}: {stdout}"
    assert "{'x': 3}" in errors[kill], errors[kill]
    assert "'crashed' rows" in errors[kill]
    copy_study(folder / kill, in_tmp, "calc")  # the skip_dups run below changes it
    df = ps.df_read("calc/results.pk")
    crashed = df[df["_outcome"] == "crashed"]
    assert 3 in set(crashed["x"]), df[["x", "_outcome"]]
    assert all("process running this pset died" in e for e in crashed["_error"])
    assert {0, 1, 2} <= set(df["x"])  # finished before: kept
    finished = df[df["_outcome"].isna()]
    assert list(finished["y"]) == [2 * x for x in finished["x"]]
    assert list(df["_pset_seq"]) == list(range(len(df)))
    assert len(set(df["_pset_id"])) == len(df)
    assert not (in_tmp / "calc" / "journal").exists() or not any(
        (in_tmp / "calc" / "journal").iterdir()
    )
    # skip_dups runs the crashed pset again, and only what has no row
    again = ps.run(lambda p: {"y": p["x"] * 2}, ps.plist("x", range(8)), skip_dups=True)
    assert sorted(again.loc[again["_run_seq"] == 1, "x"]) == sorted(
        {x for x in range(8)} - set(finished["x"])
    )


def test_a_serial_run_whose_process_died_has_its_crashed_row_next_time(in_tmp):
    Path("serial.py").write_text(
        textwrap.dedent(
            """
            import os
            import pytest_psweep as ps

            def func(pset):
                if pset["x"] == 2:
                    os._exit(1)
                return {"y": pset["x"]}

            ps.run(func, ps.plist("x", range(5)))
            """
        )
    )
    assert subprocess.run([sys.executable, "serial.py"]).returncode == 1
    df = ps.run(lambda p: {"y": 9}, ps.plist("x", [9]))
    assert list(df["x"]) == [0, 1, 2, 9]
    assert list(df["_outcome"].fillna("")) == ["", "", "crashed", ""]
    assert "process running this pset died" in df["_error"].iloc[2]


def test_a_run_where_nothing_crashed_keeps_psweeps_columns(in_tmp):
    from concurrent.futures import ProcessPoolExecutor

    df = ps.run(lambda p: {"y": p["x"]}, ps.plist("x", range(3)))
    with ProcessPoolExecutor(2) as executor:
        df = ps.run(_square, ps.plist("x", range(3, 6)), executor=executor)
    df = ps.run(_square, ps.plist("x", range(6, 8)), poolsize=2)
    assert "_outcome" not in df and "_error" not in df
    assert list(df["x"]) == list(range(8))
    assert not (in_tmp / "calc" / "journal").exists() or not any(
        (in_tmp / "calc" / "journal").iterdir()
    )


def _square(pset):
    return {"y": pset["x"] ** 2}


HANGING = """
import time
import pytest_psweep as ps

def func(pset):
    if pset["x"] == 2:
        print("ready", flush=True)
        time.sleep(3600)  # hangs
    time.sleep(0.05)
    return {"y": pset["x"]}

if __name__ == "__main__":
    try:
        ps.run(func, ps.plist("x", range(40)), poolsize=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


@pytest.mark.parametrize("group", [False, True], ids=["main-only", "process-group"])
def test_ctrl_c_with_a_hanging_pset_in_a_pool_returns_within_seconds(in_tmp, group):
    Path("hanging.py").write_text(HANGING)
    proc = subprocess.Popen(
        [sys.executable, "hanging.py"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for_line(proc, "ready")
        wait_for_journal(in_tmp / "calc", finished=3)  # x=0, 1, 3, ... finish meanwhile
        start = time.monotonic()
        if group:  # a terminal's Ctrl-C: every process of the group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 5, took
    assert "interrupted" in out
    df = ps.df_read("calc/results.pk")
    assert 2 not in set(df["x"]) and {0, 1} <= set(df["x"])
    assert len(df) >= 3 and list(df["y"]) == list(df["x"])
    assert df["x"].is_unique and df["_pset_id"].is_unique  # each finished row once
    # no worker is left behind
    leftover = subprocess.run(["pgrep", "-f", str(in_tmp / "hanging.py")], capture_output=True)
    assert leftover.stdout == b""


def test_interrupted_serial_pset_has_no_crashed_row(in_tmp):
    proc = start_script(
        "-c",
        HANGING.replace("poolsize=2", "poolsize=None").replace(
            'if __name__ == "__main__":', "if True:"
        ),
    )
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    stop(proc)
    df = ps.run(lambda p: {"y": p["x"]}, ps.plist("x", [99]))
    assert list(df["x"]) == [0, 1, 99] and "_outcome" not in df
    assert pd.api.types.is_integer_dtype(df["x"])
