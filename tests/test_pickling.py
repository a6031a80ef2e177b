"""``df_write``'s pickle (``pickling.dump``): the same frame back with ``pickle.load``
alone, in a fraction of the memory ``pickle.dump`` takes to write it."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

import pytest_psweep as ps
from pytest_psweep import pickling


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def database(n: int) -> pd.DataFrame:
    """A frame as merge makes one: distinct ids, strings repeated as one object,
    numbers, None, nullable ints and booleans, times as the index."""
    times = pd.to_datetime(np.arange(n) * 1_000_000, unit="us", utc=True)
    frame = pd.DataFrame(
        {
            "_pset_id": ids(n),
            "_sweep": ["sweep_a.py::sweep_a"] * n,
            "a": np.arange(n),
            "c": np.arange(n) / 7,
            "_error": [None] * n,
            "mixed": [(i, "t") if i % 3 else None for i in range(n)],
            "gaps": pd.array([i if i % 2 else None for i in range(n)], dtype="Int64"),
            "flag": pd.array([bool(i % 2) if i % 5 else None for i in range(n)], "boolean"),
            "_time_utc": times,
        }
    )
    frame.index = pd.DatetimeIndex(frame["_time_utc"]).rename(None)
    return frame


def test_database_reads_back_equal(tmp_path: Path) -> None:
    frame = database(3000)
    ps.df_write(frame, tmp_path / "results.pk")
    back = pickle.loads((tmp_path / "results.pk").read_bytes())
    pd.testing.assert_frame_equal(back, frame)
    assert list(back.dtypes) == list(frame.dtypes)


def test_object_blocks_of_every_layout_read_back_equal(tmp_path: Path) -> None:
    """A block of several object columns (2-D), one in Fortran order, and arrays
    outside a frame: the same shape, order and items."""
    rows = np.array([[f"r{i}", i, None] for i in range(2000)], dtype=object)
    together = pd.DataFrame(rows, columns=["s", "i", "n"]).astype(object)
    fortran = np.asfortranarray(rows)
    structured = np.array([("x", 1)], dtype=[("s", object), ("i", int)])
    for obj in (together, rows, fortran, rows[::3], structured, np.array(ids(1500))):
        with open(tmp_path / "x.pk", "wb") as fh:
            pickling.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        back = pickle.loads((tmp_path / "x.pk").read_bytes())
        if isinstance(obj, pd.DataFrame):
            pd.testing.assert_frame_equal(back, obj)
        else:
            np.testing.assert_array_equal(back, obj)
            assert back.flags.f_contiguous == obj.flags.f_contiguous
            assert back.dtype == obj.dtype


def test_database_reads_without_pytest_psweep(tmp_path: Path) -> None:
    """An ordinary pickle: pandas and NumPy read it where this package is absent."""
    frame = database(2000)
    ps.df_write(frame, tmp_path / "results.pk")
    code = (
        "import sys, pickle; sys.modules['pytest_psweep'] = None; "
        f"df = pickle.load(open({str(tmp_path / 'results.pk')!r}, 'rb')); "
        "print(len(df), df['_pset_id'].iloc[-1])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2000", frame["_pset_id"].iloc[-1]]


def test_repeated_strings_stay_one_object_each(tmp_path: Path) -> None:
    """Only arrays of distinct strings go without memo entries: a string repeated as
    one object is written once and read back as one object."""
    n = 5000
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    column = np.array([run_ids[i % 3] for i in range(n)], dtype=object)
    column[7] = "once"  # distinct strings but one: still repeated objects
    with open(tmp_path / "x.pk", "wb") as fh:
        pickling.dump(column, fh)
    back = pickle.loads((tmp_path / "x.pk").read_bytes())
    assert list(back) == list(column)
    assert len({id(item) for item in back}) == 4
    assert (tmp_path / "x.pk").stat().st_size < n * 8  # memo references, not strings


def test_write_takes_a_fraction_of_what_pickle_dump_takes(tmp_path: Path) -> None:
    """pickle.dump keeps a list per object column and a memo entry per string until
    it ends (about 80 B a row here); df_write streams them (what is left is the
    check for distinct strings: 8 B a row, one column at a time)."""
    n = 200_000
    frame = database(n).drop(columns=["mixed"])
    with open(os.devnull, "wb") as null:
        tracemalloc.start()
        try:
            pickle.dump(frame, null, protocol=pickle.HIGHEST_PROTOCOL)
            plain = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            ps.df_write(frame, tmp_path / "results.pk")
            written = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert plain > 40 * n  # what this test guards against is there to see
    assert written < 24 * n, (written, plain)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "results.pk"), frame)
