"""Building params: lists of psets (plain dicts), and the content hash of a pset."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import hashlib
import inspect
import itertools
import math
import numbers
import pickle
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import PsweepDuplicateKeyError, PsweepError, PsweepHashError

# Columns the engine and the plugin write into every row. A pset must not bring
# its own value for any of them.
BOOKKEEPING = frozenset(
    (
        "_run_id",
        "_pset_id",
        "_pset_hash",
        "_pset_seq",
        "_run_seq",
        "_calc_dir",
        "_time_utc",
        "_exec_host",
        "_pset_runtime",
        "_sweep",
        "_outcome",
        "_error",
        "_code_hash",
        "_git_commit",
        "_git_dirty",
        "_versions",
        "_case_hash",
        "_attempt",
        "_repeat",
        "_randomly_seed",
    )
)


def plist(name: str, values: Iterable[Any]) -> list[dict[str, Any]]:
    """One parameter's values as a list of one-key psets."""
    return [{name: value} for value in values]


def _merge(item: Any, into: dict[str, Any]) -> None:
    """Flatten any nesting of tuples/lists of dicts into one dict."""
    if isinstance(item, dict):
        for key, value in item.items():
            if key in into:
                raise PsweepDuplicateKeyError(
                    f"params: key {key!r} is set twice in one pset while merging "
                    f"{item!r} into {into!r}; give each parameter one plist"
                )
            into[key] = value
    elif isinstance(item, (tuple, list)):
        for sub in item:
            _merge(sub, into)
    else:
        raise PsweepError(
            f"params: expected dicts (or tuples/lists of dicts), got {type(item).__name__} {item!r}"
        )


def itr2params(loops: Iterable[Any]) -> list[dict[str, Any]]:
    """Turn the (possibly nested) result of loops over plists into a list of psets."""
    params = []
    for item in loops:
        pset: dict[str, Any] = {}
        _merge(item, pset)
        params.append(pset)
    return params


def pgrid(*plists: Any) -> list[dict[str, Any]]:
    """All combinations of the plists: ``pgrid(a, b)`` or ``pgrid([a, b])``.

    ``pgrid(zip(a, b), c)`` varies a and b together; ``pgrid(a)`` returns a's psets.
    """
    if len(plists) != 1:
        return itr2params(itertools.product(*plists))
    (arg,) = plists
    items = list(arg)
    # One argument is either a loop of psets (a plist, or zip(a, b): its items are
    # dicts or tuples of dicts) or a list of loops (lists, zip objects, ...).
    if all(isinstance(item, (dict, tuple)) for item in items):
        return itr2params(items)
    return itr2params(itertools.product(*items))


def stargrid(
    const: dict[str, Any],
    vary: Sequence[Sequence[dict[str, Any]]],
    vary_labels: Sequence[str] | None = None,
    vary_label_col: str = "_vary",
    skip_dups: bool = True,
) -> list[dict[str, Any]]:
    """One-at-a-time scans around the constant pset ``const`` (a "star").

    Each plist in ``vary`` is scanned with all other parameters at ``const``. With
    ``vary_labels``, column ``vary_label_col`` names the varied parameter(s). Psets
    that occur in several scans (the centre of the star) are kept once unless
    ``skip_dups=False``.
    """
    if vary_labels is not None and len(vary_labels) != len(vary):
        raise PsweepError(
            f"stargrid: {len(vary_labels)} vary_labels for {len(vary)} plists in vary"
        )
    params = []
    for index, scan in enumerate(vary):
        for point in scan:
            pset = dict(const)
            pset.update(point)
            if vary_labels is not None:
                pset[vary_label_col] = vary_labels[index]
            params.append(pset)
    return filter_params_unique(params) if skip_dups else params


def filter_params_unique(params: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated psets (same ``pset_hash``), keeping the first of each in order."""
    seen = set()
    unique = []
    for pset in params:
        digest = pset.get("_pset_hash") or pset_hash(pset)
        if digest not in seen:
            seen.add(digest)
            unique.append(pset)
    return unique


def filter_params_dup_hash(
    params: Sequence[dict[str, Any]], hashes: Iterable[str]
) -> list[dict[str, Any]]:
    """The psets whose hash (their ``_pset_hash``, else ``pset_hash``) is not in
    ``hashes``: what a study has not run yet."""
    known = set(hashes)
    return [pset for pset in params if (pset.get("_pset_hash") or pset_hash(pset)) not in known]


def _canonical(value: Any, key: str, out: list[str]) -> None:
    """Append a type-tagged text form of value to out in which equal values agree.

    Numbers are written by value (1, 1.0 and numpy's int64(1) agree); bools, None and
    strings keep tags of their own so that they never meet a number. The missing
    values None, NaN, ``pd.NA`` and ``pd.NaT`` are one: a DataFrame column stores
    whichever its dtype holds, and the pset read back must hash as it ran.
    """
    if value is None or (type(value).__name__ in _MISSING and _from_pandas(value)):
        out.append("N")
    elif _is_bool(value):
        out.append("T" if value else "F")
    elif isinstance(value, str):
        out.append(f"s{len(value)}:{value}")
    elif isinstance(value, numbers.Number):
        _canonical_number(value, key, out)
    elif isinstance(value, (bytes, bytearray)):
        out.append(f"b{len(value)}:{bytes(value).hex()}")
    elif isinstance(value, (list, tuple)):
        out.append(f"l{len(value)}[")
        for item in value:
            _canonical(item, key, out)
        out.append("]")
    elif isinstance(value, dict):
        # keys hash with their types ({1: 2} is not {"1": 2}); string keys in their
        # own order, as before, so that hashes of string-keyed dicts stay the same
        entries = []
        for sub_key, sub_value in value.items():
            key_out: list[str] = []
            _canonical(sub_key, key, key_out)
            order = (0, sub_key) if isinstance(sub_key, str) else (1, "".join(key_out))
            entries.append((order, key_out, sub_value))
        out.append(f"d{len(value)}{{")
        for _, key_out, sub_value in sorted(entries, key=lambda entry: entry[0]):
            out.extend(key_out)
            _canonical(sub_value, key, out)
        out.append("}")
    elif isinstance(value, (set, frozenset)):
        parts = []
        for item in value:
            item_out: list[str] = []
            _canonical(item, key, item_out)
            parts.append("".join(item_out))
        out.append(f"S{len(value)}[{''.join(sorted(parts))}]")
    elif hasattr(value, "__fspath__"):
        out.append(f"p:{value.__fspath__()}")
    elif type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        # numpy arrays (and scalars of kinds not caught above): by shape and values
        out.append(f"a{getattr(value, 'shape', ())}")
        _canonical(value.tolist(), key, out)
    else:
        _canonical_object(value, key, out)


def _canonical_object(value: Any, key: str, out: list[str]) -> None:
    """Values other than plain data: missing values, times, functions and classes,
    enums, and other objects by their class and attributes."""
    kind = type(value)
    if isinstance(value, datetime.datetime):
        out.append(f"t{value.isoformat()}")  # pandas' Timestamp too; naive is not UTC
    elif isinstance(value, datetime.date | datetime.time):
        out.append(f"t{kind.__name__[0]}{value.isoformat()}")
    elif isinstance(value, datetime.timedelta):
        out.append(f"td{value.days},{value.seconds},{value.microseconds}")
    elif isinstance(value, enum.Enum):
        out.append(f"e{_qualified(kind)}.{value.name}")
    elif isinstance(value, type) or inspect.isroutine(value):
        out.append(f"q{_qualified(value)}")  # functions and classes by name
    elif dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        out.append(f"o{_qualified(kind)}")
        _canonical(fields, key, out)
    elif hasattr(value, "__dict__") and not callable(value):
        # documented fallback: the qualified class name and the attributes
        out.append(f"o{_qualified(kind)}")
        _canonical(dict(vars(value)), key, out)
    elif _found_by_name(value):
        out.append(f"q{_qualified(value)}")  # numpy's ufuncs and other named objects
    else:
        out.append(f"P{_pickled(value, key)}")


def _found_by_name(value: Any) -> bool:
    """Whether value is what its module holds under its qualified name (``np.sin``)."""
    module = sys.modules.get(getattr(value, "__module__", None) or "")
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if module is None or not isinstance(name, str):
        return False
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
    return found is value


def _pickled(value: Any, key: str) -> str:
    """The digest of value's pickle: any other value psweep takes gets a stable one."""
    try:
        return hashlib.sha1(pickle.dumps(value, protocol=4)).hexdigest()
    except Exception as error:  # pickling fails in many ways (TypeError, PicklingError...)
        raise PsweepHashError(
            f"pset_hash: cannot hash the value of key {key!r}: "
            f"{type(value).__name__} {value!r} cannot be pickled ({error}); use values "
            "that can, such as numbers, strings, arrays, functions or plain objects"
        ) from error


_MISSING = ("NAType", "NaTType")


def _from_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas")


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', repr(obj))}"


def _is_bool(value: Any) -> bool:
    """True for Python's and numpy's bools, which must not hash like 0 and 1."""
    kind = type(value)
    return kind is bool or (kind.__module__ == "numpy" and kind.__name__ in _NP_BOOLS)


_NP_BOOLS = ("bool", "bool_")


def _canonical_number(value: Any, key: str, out: list[str]) -> None:
    if type(value) is not float and isinstance(value, numbers.Integral):
        out.append(f"i{int(value)}")
        return
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        if value.imag == 0:
            _canonical_number(value.real, key, out)
        else:
            out.append("c(")
            _canonical_number(value.real, key, out)
            _canonical_number(value.imag, key, out)
            out.append(")")
        return
    number = float(value)
    if math.isnan(number):
        out.append("N")  # missing, as None (see _canonical)
        return
    if isinstance(value, decimal.Decimal) and decimal.Decimal(number) != value:
        out.append(f"d{value.normalize()}")  # a decimal no float holds exactly
        return
    if math.isfinite(number) and number.is_integer():
        out.append(f"i{int(number)}")
    else:
        out.append(f"f{number!r}")


def pset_hash(
    pset: dict[str, Any],
    method: str = "sha1",
    raise_error: bool = True,
    skip_prefix_cols: bool = True,
    skip_postfix_cols: bool = True,
) -> Any:
    """Content hash (hex) of a pset's parameters.

    Keys starting with ``_`` (book-keeping) and, as in psweep, keys ending with ``_``
    (results) are left out; key order does not matter, numbers hash by value. The
    same parameters give the same hash in any process, machine or session. psweep's
    keywords: ``skip_prefix_cols``/``skip_postfix_cols`` (False: hash those keys too),
    ``raise_error=False`` (NaN instead of an error); ``method`` must be "sha1".
    """
    if method != "sha1":
        raise PsweepError(f"pset_hash: method {method!r} is not supported; use 'sha1'")
    if raise_error and skip_prefix_cols and skip_postfix_cols:
        return _pset_hash(pset, _is_param)

    def keep(key: str) -> bool:
        return not (
            (skip_prefix_cols and key.startswith("_")) or (skip_postfix_cols and key.endswith("_"))
        )

    try:
        return _pset_hash(pset, keep)
    except PsweepError:
        if raise_error:
            raise
        return math.nan


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA/NaT: in a database, also what a row never had."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, int):  # never NaN, and 10**400 is no float (math.isnan raises)
        return False
    return isinstance(value, numbers.Real) and not _is_bool(value) and math.isnan(value)


def python_scalar(value: Any) -> Any:
    """A numpy scalar as the Python number (or bool, str) it holds; others as they are."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def public_params(row: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a row as the user wrote them (no book-keeping)."""
    return {key: value for key, value in row.items() if not str(key).startswith("_")}


def public_values(row: dict[str, Any]) -> dict[str, Any]:
    """A database row's values that are neither book-keeping (``_x``) nor missing:
    its parameters and results, as a person would list them."""
    return {k: v for k, v in public_params(row).items() if not is_missing(v)}


def row_hash(values: dict[str, Any]) -> str:
    """The ``pset_hash`` of a database row's parameter values. A database cannot tell
    a parameter a pset never had from one set to None (both are missing values), so
    missing values are left out."""
    kept = {key: value for key, value in values.items() if not is_missing(value)}
    return _pset_hash(kept, _is_param)


def _is_param(key: str) -> bool:
    """psweep's convention: ``_x`` is book-keeping, ``x_`` a result."""
    return not (key.startswith("_") or key.endswith("_"))


def _pset_hash(pset: dict[str, Any], keep: Callable[[str], bool]) -> str:
    for key in pset:
        if not isinstance(key, str):
            raise PsweepError(f"pset_hash: key {key!r} of pset {pset!r} is not a string")
    out: list[str] = []
    for key in sorted(pset):
        if not keep(key):
            continue
        out.append(f"k{len(key)}:{key}=")
        value = pset[key]
        kind = type(value)
        # fast paths for the common exact types; _canonical handles everything
        if kind is int:
            out.append(f"i{value}")
        elif kind is str:
            out.append(f"s{len(value)}:{value}")
        elif kind is float:
            _canonical_number(value, key, out)
        else:
            _canonical(value, key, out)
    return hashlib.sha1("".join(out).encode("utf-8", "surrogatepass")).hexdigest()


def check_params(params: Any, where: str) -> list[dict[str, Any]]:
    """Return params as a list of dicts, or raise naming ``where`` and the bad pset."""
    if callable(params) and not isinstance(params, (list, tuple)):
        params = params()
    if isinstance(params, (dict, str, bytes)) or not isinstance(params, Iterable):
        raise PsweepError(
            f"{where}: params must be a list of dicts (psets), got {type(params).__name__}"
        )
    params = list(params)
    if not params:
        raise PsweepError(f"{where}: params is empty; give at least one pset")
    for index, pset in enumerate(params):
        if not isinstance(pset, dict):
            raise PsweepError(
                f"{where}: pset #{index} is a {type(pset).__name__} ({pset!r}), "
                "not a dict; params must be a list of dicts"
            )
        clash = [key for key in pset if key in BOOKKEEPING]
        if clash:
            raise PsweepError(
                f"{where}: pset #{index} {pset!r} sets book-keeping column(s) "
                f"{', '.join(map(repr, clash))}; rename the parameter(s)"
            )
    return params  # type: ignore[no-any-return]  # checked above: dicts


def hash_params(params: list[dict[str, Any]], where: str) -> list[str]:
    """The ``pset_hash`` of each pset; a pset that cannot be hashed is a PsweepError
    naming ``where`` (the sweep or ``run``) and the pset."""
    digests = []
    for index, pset in enumerate(params):
        try:
            digests.append(pset_hash(pset))
        except PsweepError as exc:
            raise PsweepError(f"{where}: pset #{index} {pset!r}: {exc}") from None
    return digests


def grid(**values: Iterable[Any]) -> list[dict[str, Any]]:
    """Shorthand for the grid of plists: ``grid(a=[1, 2], b=[3])``."""
    return pgrid([plist(name, vals) for name, vals in values.items()])


_SAFE_VALUE = re.compile(r"[\w.+-]{1,40}", re.ASCII)


def pset_ids(params: list[dict[str, Any]]) -> list[str]:
    """Readable, deterministic ids (``a=1-b=77``), unique within the sweep.

    A value that would make a bad id (long, odd characters, containers) shows as a
    short digest of its content, so every xdist worker still computes the same id.
    """
    ids = []
    for number, pset in enumerate(params):
        parts = []
        for key, value in pset.items():
            value = python_scalar(value)  # a numpy scalar reads as the number it is
            text = value if isinstance(value, str) else _repr(value, key, number)
            if not (isinstance(value, (str, int, float, bool)) or value is None) or not (
                _SAFE_VALUE.fullmatch(text)
            ):
                text = "#" + pset_hash({"v": value})[:8]
            parts.append(f"{key}={text}")
        ids.append("-".join(parts) or "empty")
    seen = collections.Counter(ids)
    numbered: collections.Counter[str] = collections.Counter()
    unique = []
    for pset_id in ids:
        if seen[pset_id] > 1:
            numbered[pset_id] += 1
            pset_id = f"{pset_id}-{numbered[pset_id] - 1}"
        unique.append(pset_id)
    return unique


def _repr(value: Any, key: str, number: int) -> str:
    """repr(value); a repr that raises is a PsweepError naming the pset and key."""
    try:
        return repr(value)
    except Exception as exc:
        raise PsweepError(
            f"pset {number} (counting from 0), parameter {key!r}: repr() of its "
            f"{type(value).__qualname__} raised {type(exc).__name__}: {exc}; ids, marks "
            "and reports show values by repr: give the class a __repr__ that works"
        ) from None
