"""New rows below a database's, one column at a time (``database.concat`` where the
caller is done with the old frame: ``calcdir.Database.append``).

``pandas.concat`` of two frames makes every column of the result before either
frame can go: the old rows, the new ones and both together are whole in memory at
once. ``stack`` makes one column of the result at a time, as ``pandas.concat``
makes it (the same dtypes, NA where a side lacks the column), and drops that column
from the old frame as soon as it is in: what the old rows take is given back while
the result grows.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# values of the old frame from which stacking pays: a column costs some 1.5 ms more
# than in one pandas.concat, nothing beside copying a million values
WORTH_IT = 1_000_000


def stackable(old: pd.DataFrame, new: pd.DataFrame) -> bool:
    """Can both be stacked column by column (each column named once on each side)?"""
    return bool(old.columns.is_unique and new.columns.is_unique)


def stack(
    old: pd.DataFrame, new: pd.DataFrame, nullable: Callable[[pd.DataFrame, Any], pd.DataFrame]
) -> pd.DataFrame:
    """The rows of old, then those of new; ``old`` is left without columns.
    ``nullable(part, other_columns)`` makes the int and bool columns of one side that
    the other lacks nullable (``database._nullable``)."""
    import pandas as pd

    give_back()  # what reading the old frame left, before the result takes more
    index = old.index.append(new.index)
    both = pd.DataFrame(index=pd.RangeIndex(len(index)))  # aligned with each column as made
    columns = [*old.columns, *(column for column in new.columns if column not in old)]
    where = {column: place for place, column in enumerate(columns)}
    made: list[int] = []  # the places of the columns made so far, in order
    # the columns of one dtype one after another: they may share one block of memory,
    # which is free only once the last of them is dropped
    dtypes = {column: str(dtype) for column, dtype in old.dtypes.items()}
    with warnings.catch_warnings():
        # sweeps with different parameter names share one database: NA is intended
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # made column-wise
        for column in sorted(columns, key=lambda c: (c not in old, dtypes.get(c, ""))):
            parts = [
                nullable(frame[[column]], other.columns) if column in frame else frame[[]]
                for frame, other in ((old, new), (new, old))
            ]
            values = pd.concat(parts, sort=False, ignore_index=True)[column]
            del parts
            at = bisect.bisect(made, where[column])
            both.insert(at, column, values)
            made.insert(at, where[column])
            del values
            if column in old:
                del old[column]  # nothing else holds it: its memory is free again
    both.index = index
    give_back()  # the old columns, before the result is written
    return both


def give_back() -> None:
    """Return freed memory to the system. glibc keeps what is freed in its heap, and
    it cannot shrink the heap where blocks still in use lie above: at a million rows,
    some 80 MiB of freed chunks (``gather``) or of a frame just unpickled that would
    stay in the process while more is allocated. Only where the C library is glibc."""
    global _trim
    if _trim is None:
        import ctypes

        try:
            _trim = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError):
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None  # glibc's malloc_trim once looked up, False where there is none
