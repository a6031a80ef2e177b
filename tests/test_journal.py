"""The journal's records, read directly: what a killed run, a full disk or a power loss
leaves behind, and what the reader still gets out of it (SPEC §3 "No file can block a
calc dir")."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_psweep as ps
from pytest_psweep import journal


def row(a: int, **extra: Any) -> dict[str, Any]:
    return {"a": a, "_pset_id": f"p{a}", "_run_id": "r", "_time_utc": 1_700_000_000 + a, **extra}


def rows(n: int) -> list[dict[str, Any]]:
    return [row(a) for a in range(n)]


def records(n: int) -> list[bytes]:
    return [journal.encode_row(r) for r in rows(n)]


def read(tmp_path, blob: bytes) -> tuple[list[dict[str, Any]], int]:
    path = tmp_path / "run.jnl"
    path.write_bytes(blob)
    return journal.read_journal(path)


def test_records_read_back_as_the_rows_written(tmp_path):
    path = tmp_path / "run.jnl"
    writer = journal.Journal(path)
    for record in records(3):
        writer.append(record)
    writer.close(remove=False)
    assert journal.read_journal(path) == (rows(3), 0)


def test_a_record_cut_short_by_a_kill_costs_that_record_only(tmp_path):
    blob = b"".join(records(3))
    assert read(tmp_path, blob[:-3]) == (rows(2), 1)


def test_garbage_in_the_middle_costs_the_records_it_hit(tmp_path):
    first, second, third = records(3)
    assert read(tmp_path, first + b"garbage" * 5 + second + third) == (rows(3), 1)
    # a short write (full disk) leaves half a record, then the next ones follow
    assert read(tmp_path, first + second[: len(second) // 2] + third) == (
        [row(0), row(2)],
        1,
    )


def test_a_zero_filled_tail_after_a_power_loss_keeps_the_rows_before(tmp_path):
    assert read(tmp_path, b"".join(records(2)) + bytes(4096)) == (rows(2), 1)


def test_a_flipped_bit_fails_the_checksum_of_its_record_only(tmp_path):
    first, second, third = records(3)
    broken = bytearray(second)
    broken[-5] ^= 0x01
    assert read(tmp_path, first + bytes(broken) + third) == ([row(0), row(2)], 1)


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "a", "dict"],
        {"_time_utc": "x", "_pset_id": "p", "_run_id": "r"},  # a returned _time_utc
        {"a": 1},  # no book-keeping
        {1: "x", "_time_utc": 1, "_pset_id": "p", "_run_id": "r"},
    ],
    ids=["list", "time-text", "no-bookkeeping", "int-key"],
)
def test_a_record_that_is_no_row_is_damage_not_poison(tmp_path, payload):
    # such a record made every later merge fail (DateParseError, naming no file)
    bad = pickle.dumps(payload)
    header = journal._HEADER.pack(journal._MAGIC, journal.FINISHED, len(bad), _crc(bad))
    assert read(tmp_path, records(1)[0] + header + bad) == ([row(0)], 1)


def _crc(payload: bytes) -> int:
    import zlib

    return zlib.crc32(payload)


def test_a_started_pset_without_its_row_becomes_a_crashed_row(tmp_path):
    started = row(1, _outcome="crashed")
    blob = (
        journal.encode_row(row(0, _outcome="started"), journal.STARTED)
        + journal.encode_row(row(0, _outcome="passed"))
        + journal.encode_row(started, journal.STARTED)
        + journal.encode_row(row(2, _outcome="started"), journal.STARTED)
        + journal.encode_cancel("p2")  # interrupted by Ctrl-C: no row
    )
    assert read(tmp_path, blob) == ([row(0, _outcome="passed"), started], 0)


def test_damage_after_a_start_makes_no_crashed_row_of_a_pset_that_may_have_passed(tmp_path):
    # a byte flipped in a finished row: the pset's row is lost, but its started record
    # must not turn into a "crashed" row of a pset that ran to the end (the invariant
    # test found this: recover made one); a start after the damage is a crash still
    finished = bytearray(journal.encode_row(row(0, _outcome="passed")))
    finished[-3] ^= 0xFF
    blob = (
        journal.encode_row(row(0, _outcome="crashed"), journal.STARTED)
        + bytes(finished)
        + journal.encode_row(row(1, _outcome="crashed"), journal.STARTED)
    )
    assert read(tmp_path, blob) == ([row(1, _outcome="crashed")], 1)
    decoder = journal.Decoder()
    list(decoder.feed(blob, final=True))
    assert decoder.crashed() == [row(1, _outcome="crashed")]
    assert decoder.unsure == [row(0, _outcome="crashed")]  # said, not made a row


def test_a_flipped_bit_in_a_records_kind_is_damage_not_another_kind(tmp_path):
    # 'S' and 'R' differ in one bit: a started record read as a finished one made a
    # second row, 'crashed', of a pset that passed (psweep merge wrote both, said no
    # damage and removed the shard file)
    started = bytearray(journal.encode_row(row(0, _outcome="crashed"), journal.STARTED))
    started[4] ^= 0x01
    assert bytes(started[4:5]) == journal.FINISHED
    blob = bytes(started) + journal.encode_row(row(0, _outcome="passed"))
    assert read(tmp_path, blob) == ([row(0, _outcome="passed")], 1)
    # a finished record read as a start would be lost to any damage after it
    finished = bytearray(journal.encode_row(row(1, _outcome="passed")))
    finished[4] ^= 0x01
    assert read(tmp_path, bytes(finished)) == ([], 1)
    # an earlier version's records (a checksum of the payload only) read as before
    payload = pickle.dumps(row(2), protocol=pickle.HIGHEST_PROTOCOL)
    header = journal._HEADER.pack(journal._MAGIC, journal.FINISHED, len(payload), _crc(payload))
    assert read(tmp_path, header + payload) == ([row(2)], 0)


def crashed(a: int, at: int) -> dict[str, Any]:
    """The row the reader makes of planned pset ``a`` that started at ``at``."""
    return row(a, _time_utc=at, _pset_runtime=0.0, _outcome="crashed", _error=journal.CRASHED)


def test_a_planned_pset_that_started_without_its_row_is_crashed_at_its_start_time(tmp_path):
    # a serial ps.run journals its psets' parameters and book-keeping ahead, then each
    # start by index: the reader makes a crashed row of one started without a row
    planned = rows(4)
    blob = (
        journal.encode_plan(0, planned[:2])
        + journal.encode_started_at(0, 1_700_000_500)
        + journal.encode_row(row(0, _outcome="passed"))
        + journal.encode_plan(2, planned[2:])
        + journal.encode_started_at(1, 1_700_000_600)
        + journal.encode_cancel("p1")  # it raised, or Ctrl-C: no row
        + journal.encode_started_at(2, 1_700_000_700)  # the process died while it ran
    )
    got, damaged = read(tmp_path, blob)
    # a=3 was planned but never started: no row
    assert got == [row(0, _outcome="passed"), crashed(2, 1_700_000_700)]
    assert damaged == 0
    # a plan of an earlier version held whole crashed rows: read as they are
    old = row(0, _pset_runtime=0.0, _outcome="crashed", _error="died")
    blob = journal.encode_plan(0, [old]) + journal.encode_started_at(0, 9)
    assert read(tmp_path, blob) == ([{**old, "_time_utc": 9}], 0)


def test_a_damaged_plan_costs_its_psets_only(tmp_path):
    good = journal.encode_plan(0, [row(0)])
    bad = pickle.dumps((1, ["not a row"]))
    header = journal._HEADER.pack(journal._MAGIC, journal.PLANNED, len(bad), _crc(bad))
    blob = (
        good
        + header
        + bad
        + journal.encode_started_at(1, 5)  # names a pset the damaged plan held: nothing
        + journal.encode_started_at(0, 7)
    )
    assert read(tmp_path, blob) == ([crashed(0, 7)], 1)


def test_a_plan_keeps_the_values_that_pickle():
    planned = [row(0, f=lambda: 1), row(1)]
    decoder = journal.Decoder()
    assert list(decoder.feed(journal.encode_plan(0, planned), final=True)) == []
    assert decoder.planned == {0: row(0), 1: row(1)}


def test_a_journal_fed_byte_by_byte_gives_the_same_rows():
    # the writer reads the journal while the controller appends to it
    blob = b"".join(records(4))
    decoder = journal.Decoder()
    got: list[dict[str, Any]] = []
    for index in range(len(blob)):
        got += decoder.feed(blob[index : index + 1])
    assert got == rows(4) and decoder.damaged == 0 and decoder.records == 4


def test_journal_read_while_it_grows_gets_each_row_once(tmp_path):
    writer = journal.Journal(tmp_path / "run.jnl")
    tail = journal.JournalTail(writer.path)
    tail.read()  # nothing written yet
    assert tail.rows.count == 0
    first, second, third = records(3)
    writer.append(first)
    writer.append(second[:5])  # the header and a bit
    tail.read()
    assert tail.rows.count == 1
    writer.append(second[5:] + third)
    tail.read()
    tail.read(final=True)
    writer.close(remove=False)
    assert tail.rows.count == 3 and tail.decoder.damaged == 0
    assert list(tail.rows.frame()["a"]) == [0, 1, 2]


def test_a_record_whose_class_cannot_be_imported_is_kept_for_later(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("vanishing")
    exec("class Thing:\n    pass\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "vanishing", module)
    blob = journal.encode_row(row(0, obj=module.Thing())) + records(2)[1]
    monkeypatch.delitem(sys.modules, "vanishing")
    decoder = journal.Decoder()
    with pytest.raises(journal.Undecodable, match="vanishing"):
        list(decoder.feed(blob, final=True))
    monkeypatch.setitem(sys.modules, "vanishing", module)
    got = list(decoder.feed(b"", final=True))  # retried from that record
    assert [r["a"] for r in got] == [0, 1] and decoder.damaged == 0


def test_a_closed_journal_is_removed_with_its_lock_once_merged(tmp_path):
    path = tmp_path / "journal" / "run.jnl"
    writer = journal.Journal(path)
    writer.append(records(1)[0])
    assert (tmp_path / "journal" / "run.jnl.lock").exists()
    writer.close(remove=True)
    assert list((tmp_path / "journal").iterdir()) == []


def test_unpicklable_value_is_named_and_the_rest_of_the_row_kept():
    bad = row(0, f=lambda: 0)
    with pytest.raises(ps.PsweepError, match=r"pset p0: the value of key\(s\) 'f' cannot be"):
        journal.encode_row(bad)
    record, problem = journal.encode_row_keeping(bad)
    assert problem is not None and "'f'" in problem
    assert journal.Decoder().feed(record, final=True).__next__() == row(0)


class TwoArgError(Exception):
    def __init__(self, code, text):
        super().__init__(f"{code}: {text}")


def test_a_value_that_pickles_but_cannot_be_unpickled_is_named():
    # pickle calls TwoArgError(*args) with the one message argument: TypeError on load
    bad = row(0, err=TwoArgError(1, "x"))
    with pytest.raises(ps.PsweepError, match=r"key\(s\) 'err' \(TypeError.*cannot be unpickled"):
        journal.encode_row(bad)
    record, problem = journal.encode_row_keeping(bad)
    assert problem is not None and "'err'" in problem
    assert next(journal.Decoder().feed(record, final=True)) == row(0)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=6),
    target=st.integers(min_value=0, max_value=5),
    start=st.integers(min_value=0, max_value=200),
    damage=st.binary(min_size=1, max_size=40),
)
def test_damage_to_one_record_never_costs_another(n, target, start, damage):
    recs = records(n)
    target %= n
    start %= len(recs[target])
    broken = bytearray(recs[target])
    broken[start : start + len(damage)] = damage  # overwrite, or grow/shrink at the end
    blob = b"".join(recs[:target]) + bytes(broken) + b"".join(recs[target + 1 :])
    decoder = journal.Decoder()
    got = list(decoder.feed(blob, final=True))
    others = [r for index, r in enumerate(rows(n)) if index != target]
    assert [r for r in got if r != row(target)] == others


def test_a_journal_of_the_earlier_format_is_read_whole(tmp_path):
    # journals that killed runs of the previous version left: an 8-byte length and
    # the pickle, no magic, no checksum; an upgrade must not lose them
    legacy = b"".join(
        len(payload).to_bytes(8, "little") + payload
        for payload in (pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in rows(3))
    )
    assert read(tmp_path, legacy) == (rows(3), 0)
    assert read(tmp_path, legacy[:-4]) == (rows(2), 1)  # cut short by the kill
