"""The writer process (``python -m pytest_psweep.writer``) and its messages, driven
directly: a real child process, real pipes, a real database."""

from __future__ import annotations

import io
import os
import signal
import sys

import pytest

import pytest_psweep as ps
from pytest_psweep import engine, writer
from pytest_psweep.calcdir import CalcDir
from pytest_psweep.session import CalcSession


def test_messages_round_trip_and_carry_exactly_their_fields():
    stream = io.StringIO()
    writer.send(stream, "written", written=3, recovered=0, notes=[])
    stream.seek(0)
    assert writer.receive(stream, "written") == {
        "op": "written",
        "written": 3,
        "recovered": 0,
        "notes": [],
    }
    assert writer.receive(stream, "written") is None  # end of the stream
    with pytest.raises(ValueError, match="'ready' takes"):
        writer.send(io.StringIO(), "ready", extra=1)


@pytest.mark.parametrize(
    "line",
    ['{"op": "launch"}\n', "hello from an imported module\n", '{"op": "ready", "x": 1}\n'],
)
def test_an_unknown_message_is_an_error_that_shows_it(line):
    with pytest.raises(ps.PsweepError, match="psweep writer: (unknown|unexpected) message"):
        writer.receive(io.StringIO(line), "ready")


def test_a_message_out_of_turn_is_an_error():
    stream = io.StringIO('{"op": "ready"}\n')
    with pytest.raises(ps.PsweepError, match="expected one of written, error"):
        writer.receive(stream, "written", "error")


def session_rows(tmp_path, values, make=lambda pset: {"r": pset["a"] * 2}):
    """A CalcSession with the writer process, with rows of ``values`` journaled."""
    session = CalcSession(tmp_path / "calc", "run-w")
    session.open(with_writer=True)
    run = engine.Run(str(session.target.path), session.run_id)
    for a in values:
        session.record(run.execute(make, {"a": a}))
    return session


def test_the_writer_appends_the_journal_and_removes_it(tmp_path):
    session = session_rows(tmp_path, [1, 2, 3])
    assert session.finish_in_writer() == 3
    session.close()
    df = ps.df_read(tmp_path / "calc" / "results.pk")
    assert list(df["r"]) == [2, 4, 6]
    assert os.listdir(tmp_path / "calc" / "journal") == []


def test_a_module_that_prints_cannot_garble_the_writers_answers(tmp_path, monkeypatch):
    # the writer imports the rows' classes' module to decode them; what it prints goes
    # to the writer's stdout, not to the pipe the session reads answers from
    (tmp_path / "noisy_results.py").write_text(
        'print(\'{"op": "written"} noise at import\')\n'
        "class Result:\n    def __init__(self, x):\n        self.x = x\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    import noisy_results  # type: ignore[import-not-found]  # written just above

    session = session_rows(tmp_path, [1, 2], make=lambda p: {"res": noisy_results.Result(p["a"])})
    assert session.finish_in_writer() == 2
    session.close()
    df = ps.df_read(tmp_path / "calc" / "results.pk")
    assert [res.x for res in df["res"]] == [1, 2]


def test_the_writer_ignores_ctrl_c_and_still_writes(tmp_path):
    session = session_rows(tmp_path, [1])
    assert session.writer is not None
    session.writer.wait_ready()
    os.kill(session.writer.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends it too
    assert session.finish_in_writer() == 1
    session.close()
    assert len(ps.df_read(tmp_path / "calc" / "results.pk")) == 1


@pytest.mark.parametrize("written", [True, False], ids=["after_the_write", "before_it"])
def test_a_ctrl_c_as_a_record_is_journaled_loses_no_row(tmp_path, monkeypatch, written):
    # a Ctrl-C's KeyboardInterrupt is raised where Python next looks for signals: just
    # after a record's write returned (the record is whole in the journal, the session
    # has not counted it: the writer refused the journal, found 1279 under -n 2), or
    # before it
    session = session_rows(tmp_path, [1, 2])
    row = engine.Run(str(session.target.path), session.run_id).execute(
        lambda pset: {"r": pset["a"] * 2}, {"a": 3}
    )
    real_write = os.write

    def ctrl_c(fd: int, data: bytes) -> int:
        if written:
            real_write(fd, data)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        session.record(row)
    monkeypatch.undo()
    assert session.finish_in_writer() == (3 if written else 2)
    session.close()
    df = ps.df_read(tmp_path / "calc" / "results.pk")
    assert list(df["r"]) == ([2, 4, 6] if written else [2, 4])
    assert os.listdir(tmp_path / "calc" / "journal") == []


def test_a_writer_that_cannot_read_the_database_says_so_and_writes_nothing(tmp_path):
    calc = CalcDir(tmp_path / "calc")
    calc.check()
    calc.database.write_bytes(b"not a pickle")
    session = CalcSession(calc.path, "run-bad")
    session.open(with_writer=True)
    with pytest.raises(ps.PsweepError, match="results.pk cannot be read"):
        session.wait_until_checked()
    session.close()
    assert calc.database.read_bytes() == b"not a pickle"


def test_the_writer_runs_as_its_own_module():
    # python -m pytest_psweep.writer: the package must not import it first (runpy
    # would warn that it is already in sys.modules)
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import pytest_psweep, sys; sys.exit('pytest_psweep.writer' in sys.modules)",
        ],
        capture_output=True,
    )
    assert done.returncode == 0, "importing the package imports the writer module"
