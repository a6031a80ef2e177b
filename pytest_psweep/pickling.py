"""A database pickled in little more memory than the frame takes (``df_write``).

``pickle.dump`` of a DataFrame holds, until it ends, a list per column of objects
(NumPy pickles an object array as the list of its items, and the pickler's memo
keeps that list alive) and a memo entry for every string it writes: for a million
rows of ids, some 170 MiB beside the frame. ``dump`` streams an object array's items
into the file instead, and writes the items of an array that holds only distinct
strings (ids, hashes) without memo entries: nothing refers to them twice. What it
writes is an ordinary pickle of the same frame: ``pickle.load`` reads it with pandas
and NumPy alone.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import IO, Any

_DISTINCT_FROM = 1024  # a smaller array's memo entries cost nothing worth a check


def dump(obj: Any, file: IO[bytes], **kwargs: Any) -> None:
    """``pickle.dump(obj, file, **kwargs)``, in less memory (see above)."""
    _Pickler(file, **kwargs).dump(obj)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        """An object array as NumPy pickles it, its items streamed (``_Items``);
        anything else as usual."""
        kind = type(obj)
        if kind.__name__ != "ndarray" or kind.__module__ != "numpy" or not obj.dtype.hasobject:
            return NotImplemented
        if obj.dtype.fields is not None:  # a structured dtype: NumPy's own way
            return NotImplemented
        # the reconstructor and its arguments as NumPy gives them for an empty array
        rebuild, args, state = obj[:0].__reduce__()
        # the items in C order whatever the layout, as NumPy lists them; the layout too
        fortran = bool(obj.flags.f_contiguous and not obj.flags.c_contiguous)
        return rebuild, args, (state[0], obj.shape, obj.dtype, fortran, _Items(self, obj.flat))


class _Items:
    """The items of an object array, unpickled as a list (what NumPy's
    ``__setstate__`` takes), pickled one by one as they are iterated."""

    def __init__(self, pickler: pickle.Pickler, items: Any) -> None:
        self.pickler = pickler
        self.items = items
        self.distinct = _distinct_strings(items.base)

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (), None, self._iter()

    def _iter(self) -> Iterator[Any]:
        # fast mode: no memo entries while these items are written; each is saved
        # whole between two steps of this iterator, so it covers them and no other
        fast = self.pickler.fast
        self.pickler.fast = self.distinct or fast
        try:
            yield from self.items
        finally:
            self.pickler.fast = fast


def _distinct_strings(array: Any) -> bool:
    """Does the array hold only strings, no object twice (so no memo entry of them
    would ever be used)?"""
    import numpy as np

    if array.size < _DISTINCT_FROM:
        return False
    head = array.flat[:_DISTINCT_FROM]  # most columns repeat an object early: done
    if len({id(item) for item in head}) < len(head):
        return False
    if not all(type(item) is str for item in array.flat):
        return False
    ids = np.fromiter(map(id, array.flat), dtype=np.uintp, count=array.size)
    ids.sort()
    return not bool((ids[1:] == ids[:-1]).any())
