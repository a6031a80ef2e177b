"""The journal's record framing, read directly: what a killed writer leaves behind."""

from __future__ import annotations

import pickle

import pytest

import pytest_psweep as ps
from pytest_psweep import journal


def rows(n: int) -> list[dict]:
    return [{"a": a, "_pset_id": str(a)} for a in range(n)]


def test_records_read_back_as_the_rows_written(tmp_path):
    path = tmp_path / "run.jnl"
    writer = journal.Journal(path)
    for row in rows(3):
        writer.append(journal.encode_row(row))
    writer.close(remove=False)
    assert journal.read_journal(path) == rows(3)


def test_a_record_cut_short_by_a_kill_is_dropped_and_the_whole_ones_kept(tmp_path):
    path = tmp_path / "run.jnl"
    blob = b"".join(journal.encode_row(row) for row in rows(3))
    path.write_bytes(blob[:-3])
    assert journal.read_journal(path) == rows(2)


def test_record_spans_cover_each_payload(tmp_path):
    records = [journal.encode_row(row) for row in rows(2)]
    spans = list(journal.record_spans(b"".join(records)))
    assert len(spans) == 2
    first_start, first_end = spans[0]
    assert first_start == 8 and first_end == len(records[0])
    blob = b"".join(records)
    assert [pickle.loads(blob[s:e]) for s, e in spans] == rows(2)


def test_a_closed_journal_is_removed_with_its_lock_once_merged(tmp_path):
    path = tmp_path / "journal" / "run.jnl"
    writer = journal.Journal(path)
    writer.append(journal.encode_row(rows(1)[0]))
    assert (tmp_path / "journal" / "run.jnl.lock").exists()
    writer.close(remove=True)
    assert list((tmp_path / "journal").iterdir()) == []


def test_unpicklable_value_is_named_and_the_rest_of_the_row_kept():
    row = {"a": 1, "f": lambda: 0, "_pset_id": "p"}
    with pytest.raises(ps.PsweepError, match=r"pset p: the value of key\(s\) 'f' cannot be"):
        journal.encode_row(row)
    record, problem = journal.encode_row_keeping(row)
    assert "'f'" in problem
    assert pickle.loads(record[8:]) == {"a": 1, "_pset_id": "p"}


def test_journal_read_while_it_grows_gets_each_row_once(tmp_path):
    # the session's writer process reads the journal as the controller appends to it,
    # also when it catches a record half written
    writer = journal.Journal(tmp_path / "run.jnl")
    tail = journal.JournalTail(writer.path)
    tail.read()  # nothing written yet
    assert tail.rows.count == 0
    records = [journal.encode_row(row) for row in rows(3)]
    writer.append(records[0])
    writer.append(records[1][:5])  # the header and a bit
    tail.read()
    assert tail.rows.count == 1
    writer.append(records[1][5:] + records[2])
    tail.read()
    tail.read()
    writer.close(remove=False)
    assert tail.rows.count == 3
    assert list(tail.rows.frame()["a"]) == [0, 1, 2]
