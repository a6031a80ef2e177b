"""Nothing lost and bad input under `pytest --psweep` (SPEC §3 "Nothing lost", §6)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import (
    make_study,
    run_session,
    section,
    start_session,
    stop,
    wait_for,
    wait_for_journal,
)

SLOW = """
    import pathlib, time
    import pytest_psweep as ps

    @ps.sweep(ps.grid(a=list(range(10))))
    def sweep_slow(pset):
        if pset["a"] == {stop_at}:
            pathlib.Path("ready").write_text("x")
            time.sleep(30)
        time.sleep({sleep})
        return {{"r": pset["a"] * 2}}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_killed_session_rows_are_merged_by_the_next(pytester, read_db, workers):
    # with two workers the last pset hangs: xdist has handed out every other one by
    # then, and the other worker finishes them all
    stop_at = 9 if workers else 4
    pytester.makepyfile(sweep_slow=SLOW.format(stop_at=stop_at, sleep=0))
    proc = start_session(pytester, *workers, "--dist", "no" if not workers else "load")
    wait_for(pytester.path / "ready")
    # the controller has journaled the reports on their way: the psets before the
    # hanging one finished, the hanging one started, nothing else running
    wait_for_journal(pytester.path / "calc", finished=stop_at, running=[stop_at])
    stop(proc)
    assert not (pytester.path / "calc" / "results.pk").exists()
    (pytester.path / "ready").unlink()

    pytester.makepyfile(sweep_slow=SLOW.format(stop_at=-1, sleep=0))
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
    df = read_db()
    killed_run, next_run = df["_run_id"].unique()
    killed = df[df["_run_id"] == killed_run]
    n_killed = len(killed)
    result.stdout.fnmatch_lines(
        [f"psweep: merged {n_killed} rows left by an interrupted session into *results.pk"]
    )
    finished = killed[killed["_outcome"] == "passed"]
    # the pset that was running when the session was killed: a crashed row
    crashed = killed[killed["_outcome"] == "crashed"]
    assert list(crashed["a"]) == [stop_at] and crashed["r"].isna().all()
    assert "died before it finished" in crashed["_error"].iloc[0]
    assert sorted(finished["a"]) == list(range(stop_at))
    assert list(finished["r"]) == [a * 2 for a in finished["a"]]
    assert list(df["_pset_seq"]) == list(range(len(df)))
    assert os.listdir(pytester.path / "calc" / "journal") == []


def test_two_sessions_at_once_keep_all_rows(pytester, read_db):
    pytester.makepyfile(sweep_slow=SLOW.format(stop_at=-1, sleep=0.05))
    procs = [start_session(pytester) for _ in range(2)]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    df = read_db()
    assert len(df) == 20
    assert df.groupby("_run_id").size().tolist() == [10, 10]
    assert sorted(df["_run_seq"].unique()) == [0, 1]
    assert list(df["_pset_seq"]) == list(range(20))


BAD_PARAMS = [
    ('{"a": 1}', "sweep sweep_bad.py::sweep_bad: params must be a list of dicts"),
    ("[]", "sweep sweep_bad.py::sweep_bad: params is empty"),
    ("[{'a': 1}, 3]", "sweep sweep_bad.py::sweep_bad: pset #1 is a int"),
    ("[{'a': 1, '_outcome': 'x'}]", "*pset #0*book-keeping column(s) '_outcome'*"),
    (
        "[{'a': __import__('threading').Lock()}]",
        "sweep sweep_bad.py::sweep_bad: pset #0 *cannot hash the value of key 'a'*",
    ),
    ("[{1: 'x'}]", "sweep sweep_bad.py::sweep_bad: pset #0 {1: 'x'}*key 1*not a string"),
    ("lambda: 1 / 0", "*building params raised ZeroDivisionError*"),
]

BAD = """
    import pytest_psweep as ps

    @ps.sweep({params})
    def sweep_bad(pset):
        pass
"""


@pytest.fixture(scope="module")
def bad_params(tmp_path_factory) -> pytest.RunResult:
    """One session collecting a good sweep and each of BAD_PARAMS's sweeps, the i-th
    in sweep_bad<i>.py."""
    bad = {f"sweep_bad{i}": BAD.format(params=params) for i, (params, _) in enumerate(BAD_PARAMS)}
    good = """
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_good(pset):
            pass
    """
    return run_session(make_study(tmp_path_factory.mktemp("bad"), sweep_good=good, **bad))


@pytest.mark.xdist_group("bad_params")
@pytest.mark.parametrize("params, message", BAD_PARAMS)
def test_bad_params_are_collection_errors_naming_the_sweep(bad_params, params, message):
    name = f"sweep_bad{BAD_PARAMS.index((params, message))}.py"
    section(bad_params, f"ERROR collecting {name}").fnmatch_lines(
        [f"*{message.replace('sweep_bad.py', name)}*"]
    )
    bad_params.stdout.fnmatch_lines([f"ERROR {name}*"])  # in the short summary
    bad_params.stdout.no_fnmatch_line("*Traceback*")
    assert bad_params.ret == pytest.ExitCode.INTERRUPTED
    bad_params.stdout.fnmatch_lines([f"*Interrupted: {len(BAD_PARAMS)} errors during collection*"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_unreadable_database_stops_the_session_and_is_kept(pytester, workers):
    pytester.makepyfile(
        sweep_ok="""
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_ok(pset):
            raise AssertionError("must not run")
    """
    )
    database = pytester.path / "calc" / "results.pk"
    database.parent.mkdir()
    database.write_bytes(b"\x80\x05garbage")
    result = pytester.runpytest_subprocess("--psweep", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*database {database} cannot be read*"])
    result.stdout.no_fnmatch_line("*must not run*")
    assert database.read_bytes() == b"\x80\x05garbage"


def test_rows_stay_in_the_journal_when_the_writer_process_dies(pytester, read_db):
    # the sweep kills the child process that would write the database (Linux /proc)
    pytester.makepyfile(
        sweep_kill="""
        import os, signal
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2, 3]))
        def sweep_kill(pset):
            if pset["a"] == 3:
                for task in os.listdir("/proc/self/task"):
                    with open(f"/proc/self/task/{task}/children") as fh:
                        for pid in fh.read().split():
                            os.kill(int(pid), signal.SIGKILL)
            return {"r": pset["a"] * 2}
    """
    )
    result = pytester.runpytest_subprocess("--psweep", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [
            "*psweep: the process that writes *results.pk ended (exit code -9)*"
            "this session's rows stay in *journal: the next run merges them, or "
            "'psweep recover */calc'"
        ]
    )
    assert not (pytester.path / "calc" / "results.pk").exists()

    result = pytester.runpytest_subprocess("--psweep", "-p", "no:xdist", "-m", "pset(a=1)")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["psweep: merged 3 rows left by an interrupted session*"])
    df = read_db()
    assert len(df) == 4 and df["_run_id"].nunique() == 2
    assert list(df["r"]) == [2, 4, 6, 2]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_pandas_stays_out_of_the_pytest_processes(pytester, read_db, workers):
    # the database is written by a child process: pytest's processes never pay
    # for importing pandas (SPEC: import pandas where a DataFrame is made)
    # said when the session is over. The controller (or a serial session): after every
    # plugin's sessionfinish (outermost wrapper). A worker: after every plugin's
    # sessionfinish but inside xdist's wrapper, which then sends the worker's output
    # to the controller; a worker may be stopped before its own later lines run
    pytester.makeconftest(
        """
        import os, sys
        import pytest

        def write(line):
            with open("processes.txt", "a") as fh:
                fh.write(line)

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_sessionfinish(session):
            yield
            if not hasattr(session.config, "workeroutput"):
                write(f"{os.getpid()} {'pandas' in sys.modules}\\n")

        class Worker:
            @pytest.hookimpl(wrapper=True, trylast=True)
            def pytest_sessionfinish(self, session):
                yield
                line = f"{os.getpid()} {'pandas' in sys.modules}\\n"
                session.config.workeroutput["pandas_line"] = line

        def pytest_configure(config):
            if hasattr(config, "workeroutput"):
                config.pluginmanager.register(Worker(), "pandas-worker")

        @pytest.hookimpl(optionalhook=True)
        def pytest_testnodedown(node, error):
            write(node.workeroutput["pandas_line"])
    """
    )
    pytester.makepyfile(
        sweep_mul="""
        import pytest_psweep as ps

        @ps.sweep(ps.plist("a", [1, 2, 3]))
        def sweep_mul(pset):
            return {"r": pset["a"] * 2}
    """
    )
    for _ in range(2):  # a new database, then an existing one
        result = pytester.runpytest_subprocess("--psweep", *workers)
        result.assert_outcomes(passed=3)
    processes = (pytester.path / "processes.txt").read_text().split("\n")[:-1]
    assert len(processes) == (2 if not workers else 6)  # with xdist: controller and 2 workers
    assert [line.split()[1] for line in processes] == ["False"] * len(processes)
    assert len(read_db()) == 6


def test_calc_dir_that_is_a_file_is_a_usage_error(pytester):
    pytester.makepyfile(
        sweep_ok="""
        import pytest_psweep as ps

        @ps.sweep([{"a": 1}])
        def sweep_ok(pset):
            pass
    """
    )
    (pytester.path / "calc").write_text("not a folder")
    result = pytester.runpytest_subprocess("--psweep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*calc dir */calc is a file*"])


def test_different_parameter_names_share_one_database(pytester, read_db):
    pytester.makepyfile(
        sweep_two="""
        import pytest_psweep as ps

        @ps.sweep(ps.grid(a=[1, 2]))
        def sweep_a(pset):
            return {"r": pset["a"]}

        @ps.sweep(ps.grid(name=["x"]))
        def sweep_name(pset):
            return {"s": pset["name"] * 2}
    """
    )
    pytester.runpytest_subprocess("--psweep").assert_outcomes(passed=3)
    df = read_db()
    assert df["a"].isna().tolist() == [False, False, True]
    assert df["name"].isna().tolist() == [True, True, False]


def test_values_of_classes_from_the_sweep_module_are_written_and_recovered(
    pytester, read_db, monkeypatch
):
    # a result holding an object of a class defined beside the sweep: the process
    # that writes the database must import that module as the session does, also
    # under the `pytest` script, which does not put the rootdir on sys.path before
    # collection; a journal of a killed run that cannot be decoded before collection
    # is merged at the end of the session
    import importlib
    import shutil

    from pytest_psweep import engine, journal

    pytester.makepyfile(
        sweep_objects="""
        import dataclasses
        import pytest_psweep as ps

        @dataclasses.dataclass
        class Result:
            x: int

        @ps.sweep(ps.plist("a", [1, 2]))
        def sweep_objects(pset):
            return {"obj": Result(pset["a"])}
    """
    )
    monkeypatch.syspath_prepend(pytester.path)
    module = importlib.import_module("sweep_objects")
    killed = engine.Run(str(pytester.path / "calc")).execute(
        lambda pset: {"obj": module.Result(pset["a"])}, {"a": 9}
    )
    journal_file = pytester.path / "calc" / "journal" / "killed.jnl"
    journal_file.parent.mkdir(parents=True)
    journal_file.write_bytes(journal.encode_row(killed))  # no lock held: its run died

    script = shutil.which("pytest", path=os.path.dirname(sys.executable))
    assert script, "the pytest script of this environment"
    # as a user runs it: pytester's own runs put the folder on PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [script, "--psweep", "-p", "no:cacheprovider", "-p", "no:randomly"]

    def run() -> str:
        done = subprocess.run(command, cwd=pytester.path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = run()
    assert "killed.jnl holds objects whose classes cannot be imported here" in first
    assert "(ModuleNotFoundError" in first
    assert "merged 1 row left by an interrupted session" in first
    assert not journal_file.exists()
    run()
    df = read_db()
    assert sorted(df["a"]) == [1, 1, 2, 2, 9]
    assert [obj.x for obj in df.sort_values("a")["obj"]] == [1, 1, 2, 2, 9]


ONE_PSET = """
    import pytest_psweep as ps

    @ps.sweep(ps.plist("a", [1]))
    def sweep_ok(pset):
        return {"r": 1}
"""


def test_the_rootdir_as_calc_dir_is_refused(pytester):
    pytester.makepyfile(sweep_ok=ONE_PSET)
    result = pytester.runpytest_subprocess("--psweep", "--psweep-calc-dir=.")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*psweep: calc dir * holds the sweep modules*"])
    assert not (pytester.path / "results.pk").exists()


def test_a_json_baseline_that_is_no_database_is_an_error(pytester):
    pytester.makepyfile(sweep_ok=ONE_PSET)
    (pytester.path / "base.json").write_text('[{"a": 1, "r": 1}]')
    result = pytester.runpytest_subprocess("--psweep", "--psweep-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline */base.json has no column(s) _sweep, _pset_hash*"])


@pytest.mark.parametrize("package", [False, True], ids=["folder", "package"])
def test_objects_of_sweep_module_classes_are_written_under_xdist(pytester, monkeypatch, package):
    # the xdist controller collects nothing, so the writer lacked the folder that
    # pytest imports the sweep module from: every -n run kept its rows in the journal
    import shutil
    import textwrap

    import pytest_psweep as ps

    folder = pytester.mkpydir("studies") if package else pytester.mkdir("studies")
    (folder / "sweep_obj.py").write_text(
        textwrap.dedent(
            """
            import dataclasses
            import pytest_psweep as ps

            @dataclasses.dataclass
            class Result:
                x: int

            @ps.sweep(ps.plist("a", [1, 2, 3]))
            def sweep_obj(pset):
                return {"res": Result(pset["a"])}
            """
        )
    )
    script = shutil.which("pytest", path=os.path.dirname(sys.executable))
    assert script, "the pytest script of this environment"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it
    done = subprocess.run(
        [script, "--psweep", "-n", "2", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 rows written" in done.stdout, done.stdout
    assert os.listdir(pytester.path / "calc" / "journal") == []
    monkeypatch.syspath_prepend(pytester.path if package else folder)
    df = ps.df_read(pytester.path / "calc" / "results.pk")
    assert sorted(res.x for res in df["res"]) == [1, 2, 3]
