"""One calc dir without a pytest run: its layout, the database under its lock, counters,
recovery of a dead run's journal, and the session object that ps.run and the plugin share."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

import pytest_psweep as ps
from pytest_psweep import calcdir, database, engine, journal
from pytest_psweep.session import CalcSession

pytestmark = pytest.mark.usefixtures("in_tmp")  # each test in a folder of its own


def double(pset):
    return {"r": pset["a"] * 2}


def test_layout_names_every_file_of_a_calc_dir(in_tmp):
    calc = calcdir.CalcDir(in_tmp / "calc")
    assert calc.database == in_tmp / "calc" / "results.pk"
    assert calc.journal("r1") == in_tmp / "calc" / "journal" / "r1.jnl"
    assert calc.module_copy("r1", "sub/sweep_x.py") == (
        in_tmp / "calc" / "backup_script" / "r1" / "sub" / "sweep_x.py"
    )
    assert calc.script_copy("r1") == in_tmp / "calc" / "backup_script" / "r1.py"
    assert calc.tmpsave("r1", "p1") == in_tmp / "calc" / "tmpsave" / "r1" / "p1.pk"
    assert calc.simulate.path == in_tmp / "calc.simulate"


def test_backups_are_named_by_the_newest_row_and_recognised(in_tmp):
    calc = calcdir.CalcDir(in_tmp / "calc")
    newest = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    folder = calc.backup(newest)
    assert folder.name == "calc_2026-01-02T03:04:05.000006Z"
    assert calc.is_backup(folder)
    assert not calc.is_backup(in_tmp / "calc_old")
    assert not calc.is_backup(in_tmp / "other" / folder.name)


def test_calc_dirs_their_copies_and_other_calc_dirs_are_never_collected(in_tmp):
    calc = calcdir.CalcDir(in_tmp / "calc")
    # a folder merely named like a calc dir, or holding a file named like a
    # database, is no calc dir: a project's test package "calc" is collected
    calc.path.mkdir()
    assert not calc.holds(calc.path)
    other = in_tmp / "studies" / "results"
    other.mkdir(parents=True)
    (other / "results.pk").write_bytes(b"")
    assert not calc.holds(other)
    # the configured calc dir, its simulate copy and its backups with a calc dir's
    # files (made before the marker existed)
    for folder in (calc.path, calc.simulate.path, calc.backup(datetime.now(timezone.utc))):
        (folder / "backup_script").mkdir(parents=True)
        assert calc.holds(folder)
    # any calc dir this package made carries the marker, wherever it is
    calcdir.CalcDir(other).check()
    assert calc.holds(other)
    assert not calc.holds(in_tmp / "studies")


def test_a_calc_dir_that_is_a_file_is_named(in_tmp):
    (in_tmp / "calc").write_text("x")
    with pytest.raises(ps.PsweepError, match=r"calc dir .*calc is a file"):
        calcdir.CalcDir(in_tmp / "calc").check()


def test_a_path_names_a_calc_dir_or_a_database_file(in_tmp):
    assert calcdir.database_file("calc") == Path("calc/results.pk")
    assert calcdir.database_file("base.json") == Path("base.json")
    assert calcdir.read_database("calc") is None
    with pytest.raises(ps.PsweepError, match="base.json does not exist"):
        calcdir.read_database("base.json")


def test_counters_continue_after_the_rows_before():
    old = pd.DataFrame({"_run_id": ["x", "x", "y"], "_pset_seq": [0, 1, 2], "_run_seq": [0, 0, 1]})
    new = pd.DataFrame({"_run_id": ["z", "y", "z"]})
    database.assign_counters(new, old)
    assert list(new["_pset_seq"]) == [3, 4, 5]
    assert list(new["_run_seq"]) == [2, 1, 2]  # y keeps its number, z gets the next


def test_rows_with_different_keys_make_columns_in_first_seen_order():
    frame = database.rows_to_frame([{"a": 1}, {"b": "x", "a": 2}, {"c": 3.5}])
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["a"].tolist()[:2] == [1, 2] and pd.isna(frame["a"].iloc[2])
    assert frame["b"].isna().tolist() == [True, False, True] and frame["b"].iloc[1] == "x"
    assert frame["c"].tolist()[2] == 3.5 and frame["c"].isna().sum() == 2


def test_latest_passed_row_per_sweep_and_pset():
    frame = pd.DataFrame(
        {
            "_sweep": ["s", "s", "s", "t"],
            "_pset_hash": ["h", "h", "h", "h"],
            "_outcome": ["passed", "passed", "failed", "passed"],
            "_pset_seq": [0, 1, 2, 3],
            "r": [10, 11, 12, 13],
        }
    )
    latest = database.latest_passed(frame)
    assert latest is not None
    assert sorted(latest["r"]) == [11, 13]
    assert database.latest_passed(frame[["_pset_hash"]]) is None
    assert database.latest_passed(None) is None


def test_rows_journaled_elsewhere_are_read_back_from_the_journal(in_tmp):
    # what the plugin's controller does with rows made and encoded by xdist workers:
    # it keeps none in memory, the journal holds them until the end
    session = CalcSession(in_tmp / "calc", "run-1")
    session.open()
    run_ = engine.Run(str(in_tmp / "calc"), session.run_id)
    for pset in ps.plist("a", [0, 1, 2]):
        session.record_encoded(journal.encode_row(run_.execute(double, pset)))
    assert session.count == 3
    whole, new = session.finish()
    assert whole is not None
    assert list(new["a"]) == [0, 1, 2] and list(new["r"]) == [0, 2, 4]
    assert list(whole["_pset_seq"]) == [0, 1, 2]
    assert os.listdir(in_tmp / "calc" / "journal") == []


def test_session_answers_what_is_done_and_the_baseline_before_the_run(in_tmp):
    rows = [
        {"a": 1, "_sweep": "s", "_pset_hash": "h1", "_outcome": "passed", "_run_id": "r"},
        {"a": 2, "_sweep": "s", "_pset_hash": "h2", "_outcome": "failed", "_run_id": "r"},
    ]
    calcdir.Database(in_tmp / "calc").append(rows)
    session = CalcSession(in_tmp / "calc", "run-2")
    assert session.done() == {("s", "h1", "")}
    baseline = session.baseline(session.calc_dir.database)
    assert list(baseline) == [("s", "h1", "")] and baseline[("s", "h1", "")]["a"] == 1
    assert not (in_tmp / "calc" / "journal").exists()  # asking opens nothing


def test_simulation_writes_to_a_copy_of_the_database(in_tmp):
    ps.run(double, ps.plist("a", [1]), calc_dir="calc")
    session = CalcSession(in_tmp / "calc", "run-3", simulate=True)
    session.open(journal=False)
    assert session.target.path == in_tmp / "calc.simulate"
    assert os.listdir(in_tmp / "calc.simulate") == ["results.pk"]


def test_database_is_read_again_only_after_another_write(in_tmp):
    # the session's writer reads the database at the start and appends at the end:
    # unchanged, it is not read twice; written by another session, it is
    ps.run(double, ps.plist("a", [1, 2]), calc_dir="calc")
    kept = calcdir.Database(in_tmp / "calc", keep_read=True)
    first = kept.read()
    assert kept.read() is first
    other = engine.Run("calc")
    calcdir.Database(in_tmp / "calc").append([other.execute(double, {"a": 3})])
    again = kept.read()
    assert again is not None and again is not first and list(again["a"]) == [1, 2, 3]
    whole, _ = kept.append([engine.Run("calc").execute(double, {"a": 4})])
    assert list(whole["a"]) == [1, 2, 3, 4] and list(whole["_pset_seq"]) == [0, 1, 2, 3]
    assert list(whole["_run_seq"]) == [0, 0, 1, 2]


def test_journal_whose_classes_cannot_be_imported_is_named_and_kept(in_tmp, monkeypatch, capsys):
    # a killed run's rows hold an object of a class this process cannot import
    import importlib

    (in_tmp / "lost_module.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(in_tmp)
    thing = importlib.import_module("lost_module").Thing()
    row = engine.Run("calc").execute(lambda pset: {"obj": thing}, {"a": 1})
    journal_file = in_tmp / "calc" / "journal" / "killed.jnl"
    journal_file.parent.mkdir(parents=True)
    journal_file.write_bytes(journal.encode_row(row))
    monkeypatch.delitem(sys.modules, "lost_module")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(in_tmp)])
    # a run goes on and says so; the journal waits for a process that can import it
    df = ps.run(double, ps.plist("a", [2]), calc_dir="calc")
    assert list(df["a"]) == [2]
    err = capsys.readouterr().err
    assert "killed.jnl holds objects whose classes cannot be imported here" in err
    assert "lost_module" in err and "psweep recover" in err
    assert journal_file.exists()
    recovery = calcdir.Database(in_tmp / "calc").recover()
    assert recovery.saved == 0 and len(recovery.deferred) == 1 and journal_file.exists()
    with pytest.raises(ps.PsweepError, match="killed.jnl holds objects"):
        calcdir.Database(in_tmp / "calc").recover(strict=True)
    monkeypatch.syspath_prepend(in_tmp)  # importable again: merged
    assert calcdir.Database(in_tmp / "calc").recover().saved == 1
    assert not journal_file.exists()


def dead_journal(calc: Path, blob: bytes, name: str = "dead.jnl") -> Path:
    """A journal as a run that died leaves it (no lock held)."""
    path = calcdir.CalcDir(calc).journal_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


def test_a_damaged_journal_gives_what_it_holds_and_goes_to_quarantine(in_tmp):
    rows = [engine.Run("calc").execute(double, {"a": a}) for a in range(3)]
    first, second, third = (journal.encode_row(r) for r in rows)
    path = dead_journal(in_tmp / "calc", first + b"\0" * 100 + third + second[:20])
    recovery = calcdir.Database(in_tmp / "calc").recover()
    assert recovery.saved == 2
    (note,) = recovery.quarantined
    assert f"journal {path} was damaged" in note and "2 rows kept, 2 records lost" in note
    quarantined = in_tmp / "calc" / "journal" / "quarantine" / "dead.jnl"
    assert quarantined.exists() and not path.exists()
    assert sorted(ps.df_read("calc/results.pk")["a"]) == [0, 2]
    # never in the way again
    assert calcdir.Database(in_tmp / "calc").recover().notes == []


def test_recover_names_a_started_pset_whose_row_may_be_in_the_damage(in_tmp):
    # a=0 started and finished, but a flipped byte took its finished row: no crashed
    # row (it may have passed), and recover says so with the way to run it again
    run = engine.Run("calc")
    done = run.execute(double, {"a": 0})
    started = journal.encode_row({**done, "_outcome": "crashed"}, journal.STARTED)
    finished = bytearray(journal.encode_row(done))
    finished[-3] ^= 0xFF
    later = journal.encode_row(run.execute(double, {"a": 1}))
    path = dead_journal(in_tmp / "calc", started + bytes(finished) + later)
    recovery = calcdir.Database(in_tmp / "calc").recover()
    (note,) = recovery.quarantined
    assert note.startswith(f"journal {path} was damaged (damaged records): 1 row kept, ")
    assert "1 record lost, 1 started pset without a row (theirs may be among the" in note
    assert "--psweep-skip-dups" in note
    assert list(ps.df_read("calc/results.pk")["a"]) == [1]


def test_a_journal_of_rows_that_cannot_make_a_database_is_quarantined_not_blocking(in_tmp):
    good = engine.Run("calc").execute(double, {"a": 1})
    # a valid record whose row cannot join the others (a column of arrays of two
    # lengths is fine for pandas; an index value that is no time is not)
    odd = dict(good, _pset_id="odd", _time_utc=2**70)
    dead_journal(in_tmp / "calc", journal.encode_row(good) + journal.encode_row(odd))
    recovery = calcdir.Database(in_tmp / "calc").recover()
    (note,) = recovery.quarantined
    assert "0 rows kept, 2 records lost" in note
    assert not (in_tmp / "calc" / "results.pk").exists()
    df = ps.run(double, ps.plist("a", [5]), calc_dir="calc")  # later runs go on
    assert list(df["a"]) == [5]
