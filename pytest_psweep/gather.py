"""Rows of many shard files into one DataFrame in little memory (``psweep merge``).

Rows arrive as dicts, one unpickled record at a time; kept as they are, a million
rows take GiBs (a Python object per value). ``Gather`` keeps them column by column
in chunks (one shard file each): numbers as NumPy arrays, strings that repeat
(``_sweep``, ``_run_id``, ``_calc_dir``, ...) as one object per distinct value, and
puts the columns together, in the order the psets ran, one column at a time.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .database import Columns
from .stacking import give_back

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_DISTINCT = 4096  # a column with more distinct strings than this is one of ids
_CHUNK = 4096  # rows kept as Python objects before they are made arrays


class Gather:
    def __init__(self) -> None:
        self.chunks: dict[str, list[tuple[int, _Same | _Array]]] = {}  # column -> (start, values)
        self.count = 0
        self._strings: dict[str, dict[str, str] | None] = {}  # column -> distinct values

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows (e.g. one file's, as they are decoded), all or none: if the iterable
        raises, what it gave is taken back and the error goes on."""
        mark = self.count
        try:
            chunk = Columns()
            for row in rows:
                self._intern(row)
                chunk.add(row)
                if chunk.count == _CHUNK:
                    self._keep(chunk)
                    chunk = Columns()
            self._keep(chunk)
        except BaseException:
            for key, chunks in list(self.chunks.items()):
                chunks[:] = [(start, values) for start, values in chunks if start < mark]
                if not chunks:
                    del self.chunks[key]
            self.count = mark
            raise

    def _intern(self, row: dict[str, Any]) -> None:
        """One object for each distinct string of a column that repeats them."""
        strings = self._strings
        for key, value in row.items():
            if type(value) is str:
                seen = strings.get(key, {})
                if seen is not None:
                    row[key] = seen.setdefault(value, value)
                    strings[key] = seen if len(seen) <= _DISTINCT else None

    def _keep(self, chunk: Columns) -> None:
        for key, values in chunk.columns.items():
            self.chunks.setdefault(key, []).append((self.count, _compact(values)))
        self.count += chunk.count

    def frame(self) -> pd.DataFrame:
        """The rows as one DataFrame, as ``Columns.frame`` makes it, sorted by
        ``_time_utc`` (stable: rows of one time keep their order); the chunks are
        used up, one column at a time."""
        import numpy as np
        import pandas as pd

        order = None
        if "_time_utc" in self.chunks:
            times = self._column("_time_utc", keep=True)
            if not bool(np.all(times[1:] >= times[:-1])):
                order = np.argsort(times, kind="stable")
        # column by column into an empty frame: a DataFrame made of all of them at
        # once would copy the columns of one type into one block (twice the memory)
        frame = pd.DataFrame(index=pd.RangeIndex(self.count))
        with warnings.catch_warnings():  # "highly fragmented": that is the point
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            for key in list(self.chunks):
                column = self._column(key)
                if order is not None:
                    column = column[order]
                # objects as a list: pandas infers their type as for Columns.frame
                frame[key] = pd.Series(column.tolist() if column.dtype == object else column)
                del column
                give_back()  # the chunks' memory, before the next column takes more
        if "_time_utc" in frame:  # integer microseconds since the epoch, as Columns has them
            frame["_time_utc"] = pd.to_datetime(frame["_time_utc"], unit="us", utc=True)
            frame.index = pd.DatetimeIndex(frame["_time_utc"]).rename(None)
        return frame

    def _column(self, key: str, keep: bool = False) -> np.ndarray[Any, Any]:
        """One column whole: a typed array if every chunk is one of the same type,
        else objects; rows of chunks without the column are None."""
        import numpy as np

        chunks = self.chunks[key] if keep else self.chunks.pop(key)
        dtypes = {values.dtype for _, values in chunks}
        covered = sum(len(values) for _, values in chunks)
        if len(dtypes) == 1 and covered == self.count and dtypes != {np.dtype(object)}:
            return np.concatenate([values.array() for _, values in chunks])
        column = np.empty(self.count, dtype=object)  # None where a chunk lacks it
        for start, values in chunks:
            column[start : start + len(values)] = values.array()
        return column


class _Same:
    """A chunk of one column whose values are all one object (a run id, a sweep,
    None): kept once, not once per row."""

    def __init__(self, value: Any, length: int, dtype: Any) -> None:
        self.value = value
        self.length = length
        self.dtype = dtype

    def __len__(self) -> int:
        return self.length

    def array(self) -> np.ndarray[Any, Any]:
        import numpy as np

        column = np.empty(self.length, dtype=self.dtype)
        column.fill(self.value)  # np.full would make a new str per row from a str
        return column


class _Array:
    def __init__(self, values: np.ndarray[Any, Any]) -> None:
        self.values = values
        self.dtype = values.dtype

    def __len__(self) -> int:
        return len(self.values)

    def array(self) -> np.ndarray[Any, Any]:
        return self.values


def _compact(values: list[Any]) -> _Same | _Array:
    """A chunk of one column: float64 or int64 if every value is one, else objects;
    one value if they are all the same object."""
    import numpy as np

    kinds = set(map(type, values))
    dtype = np.dtype(object)
    if kinds == {float}:
        dtype = np.dtype(np.float64)
    elif kinds == {int} and all(-(2**63) <= v < 2**63 for v in values):
        dtype = np.dtype(np.int64)
    first = values[0] if values else None
    if all(value is first for value in values):
        return _Same(first, len(values), dtype)
    if dtype != np.dtype(object):
        return _Array(np.array(values, dtype=dtype))
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return _Array(column)
