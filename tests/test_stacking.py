"""``concat(old, new, release=True)`` (``stacking.stack``): the frame pandas.concat
makes, in the memory of the result alone, old columns given back as they are in."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pytest_psweep import stacking
from pytest_psweep.calcdir import CalcDir, Database
from pytest_psweep.database import concat, df_read


def frame(n: int, start: int = 0, /, **columns: object) -> pd.DataFrame:
    """A frame indexed by times, as a database is."""
    out = pd.DataFrame(columns)
    out.index = pd.to_datetime(np.arange(n) + start, unit="s", utc=True)
    return out


CASES = {
    "mixed sides": (
        frame(3, a=[1, 2, 3], s=["x", "y", "z"], o=[None, (1,), "q"], b=[True, False, True]),
        frame(2, 10, a=[4, 5], c=[0.5, 1.5], s=["u", None]),
    ),
    "floats below ints": (frame(2, a=[1, 2]), frame(2, 5, a=[0.5, 1.5])),
    "Int64 below floats": (frame(2, a=pd.array([1, None], dtype="Int64")), frame(2, 5, a=[0.5, 1])),
    "ints and bools a side lacks": (frame(2, a=[1, 2]), frame(2, 5, b=[True, False])),
    "None then strings": (frame(2, e=[None, None]), frame(2, 5, e=["a", "b"])),
    "strings then ints": (frame(2, s=["a", "b"]), frame(2, 5, s=[1, 2])),
    "times a side lacks": (
        frame(2, x=[1, 2]),
        frame(2, 5, d=pd.to_datetime([1, 2], unit="s", utc=True)),
    ),
    "NaN then a string": (frame(1, a=[np.nan]), frame(1, 5, a=["s"])),
}


@pytest.mark.parametrize("name", CASES)
def test_stacked_frame_is_what_pandas_concat_makes(name: str, monkeypatch) -> None:
    old, new = CASES[name]
    expected = concat(old.copy(), new)
    monkeypatch.setattr(stacking, "WORTH_IT", 0)
    given = old.copy()
    both = concat(given, new, release=True)
    pd.testing.assert_frame_equal(both, expected)
    assert list(both.dtypes) == list(expected.dtypes)
    assert given.columns.empty  # released


def peak_of(make: Callable[[], pd.DataFrame], new: pd.DataFrame, release: bool) -> float:
    """The peak of the memory ``concat(make(), new)`` takes beyond what make()'s frame
    does, in columns of ``N`` floats (the frame is made while traced: what is freed
    of it counts)."""
    tracemalloc.start()
    try:
        old = make()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        concat(old, new, release=release)
        return (tracemalloc.get_traced_memory()[1] - before) / (8 * N)
    finally:
        tracemalloc.stop()


N = 200_000


def fragmented() -> pd.DataFrame:
    """Eight float columns a block each, as merge writes a database."""
    old = frame(N)
    for i in range(8):
        old[f"x{i}"] = np.arange(N, dtype=float)
    return old


def consolidated() -> pd.DataFrame:
    """Eight columns in two blocks (float, int), their columns interleaved."""
    kinds = ("f8", "i8")
    return frame(N, **{f"{kind}{i}": np.arange(N, dtype=kind) for i in range(4) for kind in kinds})


def test_old_columns_are_given_back_as_they_are_in() -> None:
    """pandas.concat makes all 8 columns again while the old ones stay; stacked, the
    old columns go as they are in: the peak is about a column (and the index)."""
    new = fragmented().iloc[:100]
    plain = peak_of(fragmented, new, release=False)
    released = peak_of(fragmented, new, release=True)
    assert plain > 8
    assert released < 3.5, (released, plain)


def test_columns_sharing_a_block_go_together() -> None:
    """A consolidated frame: the columns of one block are stacked one after another,
    so that a block goes once its 4 columns are in, not at the seventh column."""
    new = consolidated().iloc[:10]
    plain = peak_of(consolidated, new, release=False)
    released = peak_of(consolidated, new, release=True)
    assert plain > 8
    assert released < 6.5, (released, plain)  # 8 if the blocks went last


def test_append_to_a_big_database_writes_what_concat_makes(tmp_path: Path) -> None:
    """Database.append releases the old frame it read once it is big: the database
    written is the one pandas.concat makes (an int column the new rows lack becomes
    Int64, a new result column NA above)."""
    n = stacking.WORTH_IT // 8 + 1
    first = frame(
        n,
        a=np.arange(n),
        c=np.arange(n) / 3,
        _pset_id=[f"id{i}" for i in range(n)],
        _run_id=["r1"] * n,
        _sweep=["s.py::one"] * n,
        _outcome=["passed"] * n,
        _pset_hash=[f"{i:040x}" for i in range(n)],
        flag=np.ones(n, dtype=bool),
    )
    second = frame(
        5,
        2 * n,
        b=[1.5] * 5,
        c=[0.5] * 5,
        _pset_id=[f"new{i}" for i in range(5)],
        _run_id=["r2"] * 5,
        _sweep=["s.py::two"] * 5,
        _outcome=["failed"] * 5,
        _pset_hash=[f"{i:039x}f" for i in range(5)],
    )
    calc = CalcDir(tmp_path / "calc")
    calc.path.mkdir()
    calc.mark()
    database = Database(calc)
    database.append(first.copy())
    old = df_read(calc.database)
    whole, new = database.append(second.copy())
    assert len(new) == 5
    written = df_read(calc.database)
    expected = concat(old, new)
    pd.testing.assert_frame_equal(written, expected)
    pd.testing.assert_frame_equal(whole, expected)
    assert str(written["a"].dtype) == "Int64" and str(written["flag"].dtype) == "boolean"


def test_frames_with_a_column_name_twice_are_concatenated_whole(monkeypatch) -> None:
    """Column by column needs each name once: otherwise pandas.concat, as before."""
    monkeypatch.setattr(stacking, "WORTH_IT", 0)
    old = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    new = pd.DataFrame([[5, 6]], columns=["a", "a"])
    both = concat(old, new, release=True)
    pd.testing.assert_frame_equal(both, pd.concat([old, new]))
    assert list(old.columns) == ["a", "a"]  # not released
