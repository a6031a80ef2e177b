"""``ps.run`` on any executor (SPEC §7): concurrent.futures pools and a real dask
cluster on 127.0.0.1, rows journaled as they finish, killed drivers and raising
psets."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import (
    Executor,
    Future,
    InvalidStateError,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from typing import Any

import pytest

import pytest_psweep as ps
from pytest_psweep.calcdir import Database
from pytest_psweep.errors import PsweepError


def slow_first(pset):
    time.sleep(0.5 if pset["x"] == 0 else 0.01)
    return {"y": pset["x"] * 2, "pid": os.getpid()}


@pytest.mark.parametrize("make", [ProcessPoolExecutor, ThreadPoolExecutor])
def test_rows_from_an_executor_are_in_params_order(in_tmp, make):
    with make(2) as executor:
        df = ps.run(slow_first, ps.plist("x", range(8)), executor=executor)
    # x=0 finished last, and is first: the database looks as after a serial run
    assert list(df["x"]) == list(range(8))
    assert list(df["_pset_seq"]) == list(range(8))
    assert list(df["y"]) == [2 * x for x in range(8)]
    if make is ProcessPoolExecutor:
        assert os.getpid() not in set(df["pid"])
    again = ps.run(slow_first, ps.plist("x", range(8)), executor=ThreadPoolExecutor(2))
    assert list(again["_pset_seq"]) == list(range(16))


def raise_one(pset):
    if pset["x"] == 1:
        raise ValueError("x=1 fails")
    time.sleep(0.5 if pset["x"] == 0 else 0.01)
    return {"y": pset["x"]}


def test_a_raising_pset_fails_the_run_after_every_finished_row_is_saved(in_tmp):
    with ThreadPoolExecutor(2) as executor, pytest.raises(ValueError, match="x=1 fails") as info:
        ps.run(raise_one, ps.plist("x", range(6)), executor=executor)
    db = ps.df_read("calc/results.pk")
    # x=0 was running when x=1 raised: it finished and is kept
    assert 0 in set(db["x"]) and 1 not in set(db["x"])
    assert list(db["x"]) == sorted(db["x"])
    assert any("were saved to calc/results.pk" in note for note in info.value.__notes__)


class NotifiesNoCancel(Executor):
    """Runs each task in a thread of its own, as dask's ``ClientExecutor`` runs them
    on its workers: a future stays PENDING while its task runs, and a future cancelled
    meanwhile is never notified (``set_running_or_notify_cancel``), so
    ``concurrent.futures.wait`` never counts it done (python/cpython#92001)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future[Any] = Future()

        def work() -> None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the future
                with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                    future.set_exception(exc)
            else:
                with contextlib.suppress(InvalidStateError):
                    future.set_result(result)

        threading.Thread(target=work, daemon=True).start()
        return future


def fails_at_once(pset):
    if pset["x"] == 0:
        raise ValueError("x=0 fails")
    time.sleep(0.5)
    return {"y": pset["x"]}


def test_a_failure_on_an_executor_that_never_notifies_a_cancel_ends_the_run(in_tmp):
    # dask's ClientExecutor: the run cancelled the psets still running and then
    # waited for them for ever (seen as a hung dask driver in test_executor_faults)
    ended: list[BaseException] = []

    def run() -> None:
        try:
            ps.run(fails_at_once, ps.plist("x", range(4)), executor=NotifiesNoCancel())
        except BaseException as exc:
            ended.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "ps.run still waits for the psets it cancelled"
    assert isinstance(ended[0], ValueError) and "x=0 fails" in str(ended[0])


def test_a_killed_driver_loses_only_the_psets_that_did_not_finish(in_tmp):
    (in_tmp / "driver.py").write_text(
        textwrap.dedent(
            """
            import os, time
            from concurrent.futures import ProcessPoolExecutor
            import pytest_psweep as ps

            def wait_for_go(pset):
                while pset["x"] == 0 and not os.path.exists("go"):
                    time.sleep(0.05)
                return {"y": pset["x"]}

            if __name__ == "__main__":
                with ProcessPoolExecutor(2) as executor:
                    ps.run(wait_for_go, ps.plist("x", range(8)), executor=executor)
            """
        )
    )
    driver = subprocess.Popen([sys.executable, "driver.py"], start_new_session=True)
    try:
        database = Database(in_tmp / "calc")
        end = time.monotonic() + 120
        # rows journaled as they finish: 7 are there while x=0 still runs
        while len(database.waiting_rows()) < 7:
            assert time.monotonic() < end and driver.poll() is None
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert not (in_tmp / "calc" / "results.pk").exists()
    # the next run merges what the killed one left
    db = ps.run(slow_first, ps.plist("x", [99]), calc_dir="calc")
    assert sorted(db["x"]) == [*range(1, 8), 99]
    assert os.listdir("calc/journal") == []  # the killed run's start marks too


def test_wrong_executor_arguments_are_clear_errors(in_tmp):
    with pytest.raises(PsweepError, match="has no submit"):
        ps.run(slow_first, ps.plist("x", [1]), executor=object())  # type: ignore[arg-type]  # the point
    with pytest.raises(PsweepError, match="is no dask distributed.Client"):
        ps.run(slow_first, ps.plist("x", [1]), dask_client=object())
    with pytest.raises(PsweepError, match="not both"):
        ps.run(slow_first, ps.plist("x", [1]), executor=ThreadPoolExecutor(1), dask_client=1)
    assert not (in_tmp / "calc" / "results.pk").exists()


DASK_SCRIPT = """
import os
import time

import pytest_psweep as ps
from distributed import Client, LocalCluster


def func(pset):
    time.sleep(0.3 if pset["x"] == 0 else 0.02)
    return {"y": pset["x"] ** 2, "pid": os.getpid()}


if __name__ == "__main__":
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    with cluster, Client(cluster) as client:
        ps.run(func, ps.plist("x", range(10)), dask_client=client)  # psweep's keyword
        ps.run(func, ps.plist("x", range(10, 20)), executor=client.get_executor())
    print("done")
"""


def test_a_script_runs_on_a_dask_cluster(in_tmp):
    if importlib.util.find_spec("distributed") is None:
        reason = "dask's distributed is not installed: pip install 'pytest-psweep[dask]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs it: {reason}", pytrace=False)
        pytest.skip(reason)
    (in_tmp / "study.py").write_text(DASK_SCRIPT)
    done = subprocess.run([sys.executable, "study.py"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    db = ps.df_read("calc/results.pk")
    assert list(db["x"]) == list(range(20)) and list(db["_pset_seq"]) == list(range(20))
    assert list(db["y"]) == [x**2 for x in range(20)]
    assert db["_run_id"].nunique() == 2
    assert len(set(db["pid"])) == 2  # the cluster's two worker processes
