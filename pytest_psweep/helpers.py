"""psweep 0.16's small helpers, so that its scripts run unchanged (SPEC §8).

Shell and files (``system``, ``makedirs``, ``fullpath``, ``file_*``, ``pickle_*``,
``json_*``), sequences and dicts (``is_seq``, ``itr``, ``flatten``,
``flatten_dict``, ``merge_dicts``), spaces of values (``intspace``, ``logspace``),
ids (``get_uuid``) and the column convention (``filter_cols``): a leading ``_``
marks book-keeping, a trailing ``_`` a result, anything else a parameter.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .errors import PsweepDuplicateKeyError

# -- shell and files -------------------------------------------------------------------


def system(cmd: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a shell command; its stdout and stderr together in ``.stdout`` (bytes).
    A failing command prints its output and raises ``CalledProcessError``."""
    try:
        return subprocess.run(
            cmd, shell=True, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
        )
    except subprocess.CalledProcessError as exc:
        print(exc.stdout.decode(errors="replace"), file=sys.stdout)
        raise


def makedirs(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and its parents; nothing for an existing one or ``""``."""
    if str(path).strip():
        os.makedirs(path, exist_ok=True)


def fullpath(path: str | os.PathLike[str]) -> str:
    """``path`` absolute, with ``~`` expanded."""
    return os.path.abspath(os.path.expanduser(path))


def file_write(path: str | os.PathLike[str], text: str, mode: str = "w") -> None:
    """Write text, making the folder first; characters the file's encoding cannot
    hold become XML character references."""
    makedirs(os.path.dirname(path))
    with open(path, mode) as fd:
        try:
            fd.write(text)
        except UnicodeEncodeError:
            fd.write(text.encode("ascii", errors="xmlcharrefreplace").decode())


def file_read(path: str | os.PathLike[str]) -> str:
    with open(path) as fd:
        return fd.read()


def pickle_write(path: str | os.PathLike[str], obj: Any) -> None:
    makedirs(os.path.dirname(path))
    with open(path, "wb") as fd:
        pickle.dump(obj, fd)


def pickle_read(path: str | os.PathLike[str]) -> Any:
    with open(path, "rb") as fd:
        return pickle.load(fd)


def json_write(path: str | os.PathLike[str], obj: Any) -> None:
    file_write(path, json.dumps(obj, indent=2))


def json_read(path: str | os.PathLike[str]) -> Any:
    with open(path) as fd:
        return json.load(fd)


# -- sequences and dicts ---------------------------------------------------------------


def is_seq(value: Any) -> bool:
    """Iterable, but not a string, a dict or a file."""
    if isinstance(value, str | dict | io.IOBase):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def itr(func: Callable[..., Any]) -> Callable[..., Any]:
    """Let a function of one sequence also take its items as arguments:
    ``f(a, b)`` is ``f([a, b])``, and ``f(a)`` is ``f([a])`` for a non-sequence."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1:
            return func(args[0] if is_seq(args[0]) else [args[0]], **kwargs)
        return func(args, **kwargs)

    return wrapper


def flatten(seq: Iterable[Any]) -> Iterator[Any]:
    """The non-sequence items of arbitrarily nested sequences, in order."""
    for item in seq:
        if is_seq(item):
            yield from flatten(item)
        else:
            yield item


def flatten_dict(dct: dict[Any, Any], join_str: str = "_") -> dict[Any, Any]:
    """Nested dicts as one level: ``{"b": {"c": 2}}`` is ``{"b_c": 2}``; keys of
    inner levels are joined as strings."""
    flat: dict[Any, Any] = {}

    def walk(inner: dict[Any, Any], prefix: Any) -> None:
        for key, value in inner.items():
            name = key if prefix is None else f"{prefix}{join_str}{key}"
            if isinstance(value, dict):
                walk(value, name)
            else:
                flat[name] = value

    walk(dct, None)
    return flat


@itr
def merge_dicts(dicts: Sequence[dict[Any, Any]], *, allow_dup_keys: bool = True) -> dict[Any, Any]:
    """One dict from several, later ones winning; with ``allow_dup_keys=False`` a
    key in two of them is an error."""
    dicts = list(dicts)
    merged: dict[Any, Any] = {}
    for index, dct in enumerate(dicts):
        if not isinstance(dct, dict):
            raise TypeError(f"merge_dicts: item {index} is a {type(dct).__name__}, not a dict")
        if not allow_dup_keys:
            again = merged.keys() & dct.keys()
            if again:
                raise PsweepDuplicateKeyError(
                    f"merge_dicts: dict keys overlap: {sorted(again, key=str)} (dict {index}); "
                    "rename them, or merge with allow_dup_keys=True (later ones win)"
                )
        merged.update(dct)
    return merged


# -- spaces of values ------------------------------------------------------------------


def intspace(*args: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """``numpy.linspace`` rounded to integers, duplicates dropped (so possibly
    fewer than ``num`` values)."""
    import numpy as np

    if "dtype" in kwargs:
        raise TypeError("intspace: got 'dtype' twice")
    values = np.round(np.linspace(*args, **kwargs)).astype(np.int64 if dtype is None else dtype)
    return np.unique(values)


def logspace(
    start: float,
    stop: float,
    num: int = 50,
    offset: float = 0,
    log_func: Callable[[Any], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``num`` values from ``start`` to ``stop`` (the values, not exponents) spaced
    logarithmically; a larger ``offset`` spaces them more evenly. ``base`` (default
    10) and ``log_func`` (default ``numpy.log10``) must agree."""
    import numpy as np

    base = kwargs.pop("base", 10.0)
    log = np.log10 if log_func is None else log_func
    if not np.allclose(log(base), 1.0):
        raise ValueError(f"logspace: log_func and base={base} do not match")
    exponents = (log(start + offset), log(stop + offset))
    return np.logspace(*exponents, num=num, base=base, **kwargs) - offset


# -- ids and columns -------------------------------------------------------------------


def get_uuid(retry: int = 10, existing: Sequence[str] = ()) -> str:
    """A random UUID (str) not among ``existing``."""
    taken = set(existing)
    for _ in range(max(retry, 1)):
        new = str(uuid.uuid4())
        if new not in taken:
            return new
    raise RuntimeError(f"get_uuid: no new UUID in {retry} attempts")


def get_many_uuids(num: int, retry: int = 10, existing: Sequence[str] = ()) -> list[str]:
    """``num`` different random UUIDs, none among ``existing``."""
    taken = set(existing)
    for _ in range(max(retry, 1)):
        new = {str(uuid.uuid4()) for _ in range(num)}
        if len(new) == num and not new & taken:
            return list(new)
    raise RuntimeError(f"get_many_uuids: no {num} new UUIDs in {retry} attempts")


_KINDS: dict[str, Callable[[str], bool]] = {
    "pset": lambda c: not (c.startswith("_") or c.endswith("_")),
    "pre": lambda c: c.startswith("_"),
    "prefix": lambda c: c.startswith("_"),
    "post": lambda c: c.endswith("_"),
    "postfix": lambda c: c.endswith("_"),
}


def filter_cols(cols: Iterable[str], kind: str = "pset") -> list[str]:
    """Column names of one kind, by psweep's convention: ``pset`` (parameters:
    neither of the others), ``pre``/``prefix`` (book-keeping, ``_x``),
    ``post``/``postfix`` (results named ``x_``)."""
    if kind not in _KINDS:
        raise ValueError(f"filter_cols: kind={kind!r} is not one of {sorted(_KINDS)}")
    keep = _KINDS[kind]
    return [col for col in cols if keep(str(col))]
