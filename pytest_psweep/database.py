"""Databases as files: a DataFrame read and written atomically, rows gathered into one.

Knows the formats (a pickled ``pandas.DataFrame``, or JSON for sharing) and how rows
become a database: columns in first-seen order, ``_time_utc`` as the index, counters
continued after the rows before. Where the files of a calc dir live is ``calcdir``'s
business; this module is told the path.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import pickling, stacking
from .errors import PsweepError
from .names import KEY_COLUMNS, LOCK_TIMEOUT, LOCK_TIMEOUT_ENV, RowKey

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made, not at import
    import pandas as pd
    from filelock import FileLock


def df_read(path: str | os.PathLike[str], fmt: str = "pickle", **kwargs: Any) -> pd.DataFrame:
    """Read a database file (``fmt="pickle"`` or ``"json"``); clear error if unreadable.

    JSON is this package's exact format (``to_json``); with keyword arguments (as
    psweep's ``df_read(path, "json", orient=...)``) a file pandas wrote, read by
    ``pandas.read_json`` with them (``orient`` defaults to "records", as in psweep).
    """
    import pandas as pd

    path = Path(path)
    try:
        if fmt == "pickle":
            with path.open("rb") as fd:
                df = pickle.load(fd, **kwargs)
        elif fmt == "json" and kwargs:
            kwargs.setdefault("orient", "records")
            df = pd.read_json(path, precise_float=True, **kwargs)
        elif fmt == "json":
            df = from_json(path.read_text())
        else:
            raise PsweepError(f"df_read: unknown fmt {fmt!r}; use 'pickle' or 'json'")
    except PsweepError:
        raise
    except FileNotFoundError:
        raise PsweepError(f"database {path} does not exist") from None
    except (ImportError, AttributeError) as exc:  # the file is fine: a class is missing
        raise Unimportable(path, exc) from exc
    except Exception as exc:
        raise PsweepError(
            f"database {path} cannot be read ({type(exc).__name__}: {exc}); it is "
            "left as it is: move it away or restore a backup"
        ) from exc
    if not isinstance(df, pd.DataFrame):
        raise PsweepError(
            f"database {path} holds a {type(df).__name__}, not a pandas DataFrame; "
            "it is left as it is: move it away or restore a backup"
        )
    return df


class Unimportable(PsweepError):
    """A database that holds objects of a class that cannot be imported here: the file
    is intact; the module defining the class must be importable to read it."""

    def __init__(self, path: Path, cause: BaseException, tried: Iterable[str] = ()) -> None:
        self.path, self.cause = path, cause
        module = getattr(cause, "name", None) if isinstance(cause, ImportError) else None
        what = f"module {module!r}" if module else f"a class ({cause})"
        tried = list(tried)
        super().__init__(
            f"database {path} is intact, but holds objects of {what}, which cannot be "
            f"imported here ({type(cause).__name__}: {cause})"
            + (f"; looked in {', '.join(tried)}" if tried else "")
            + ": make the sweep modules importable (run from the folder they are in, or "
            "PYTHONPATH=<that folder>) and run again"
        )


def df_write(df: Any, path: Any, fmt: str = "pickle", **kwargs: Any) -> None:
    """Write df to path atomically: a temp file in the same folder, then a rename.

    psweep's order, ``df_write(path, df)``, works too. Keyword arguments go to
    ``pickle.dump``, or for JSON to ``DataFrame.to_json`` with psweep's defaults
    (orient "records", ISO dates in seconds, 15 digits) instead of this package's
    exact format. The file gets the permissions the user's umask gives new files; a
    write that fails (a full disk, a read-only folder) is a PsweepError naming the
    file, and leaves what was at path as it was.
    """
    if isinstance(df, str | os.PathLike) and not isinstance(path, str | os.PathLike):
        df, path = path, df
    if fmt == "pickle":
        kwargs.setdefault("protocol", pickle.HIGHEST_PROTOCOL)
        write_atomic(Path(path), lambda fh: pickling.dump(df, fh, **kwargs))
    elif fmt == "json":
        if kwargs:
            text = df_to_json(df, **kwargs)
        else:
            text = to_json(df)
        write_atomic(Path(path), lambda fh: fh.write(text.encode()))
    else:
        raise PsweepError(f"df_write: unknown fmt {fmt!r}; use 'pickle' or 'json'")


def df_to_json(df: pd.DataFrame, **kwargs: Any) -> Any:
    """``df.to_json`` with psweep's defaults: orient "records", ISO dates in seconds,
    15 digits (a string, or None when ``path_or_buf`` is given)."""
    import pandas as pd

    options: dict[str, Any] = {"orient": "records", "date_unit": "s", "date_format": "iso"}
    options["double_precision"] = 15
    if "_time_utc" in df and df.index.equals(pd.DatetimeIndex(df["_time_utc"])):
        # the index is the _time_utc column: in seconds, rows of one second would share
        # a key of orient "columns" or "index"; a position loses nothing
        df = df.reset_index(drop=True)
    return df.to_json(**{**options, **kwargs})


def write_atomic(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write(file)`` to a temp file next to path, then rename it to path (see
    ``df_write``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


def temp_prefix(path: Path) -> str:
    """How the temp files of an atomic write of path begin (``.results.pk.``)."""
    return f".{path.name}."


def _write_error(path: Path, exc: OSError) -> PsweepError:
    return PsweepError(
        f"{path} cannot be written ({exc.strerror or exc}); what was there is left as it was"
    )


def _umask() -> int:
    """The process's umask (read by setting it, the only portable way, and back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- JSON ---------------------------------------------------------------------------
# Every JSON file the package writes (df_write, psweep export, baselines) is this:
#   {"columns": [...], "dtypes": {column: dtype}, "index": [...] | null, "data": [
#   [row 0], ...  (one row a line)
#   ]}
# Floats are written exactly (Python's shortest repr), NaN as null and infinities as
# the strings "Infinity" / "-Infinity" (JSON has neither), times as ISO text to the
# nanosecond; each column's dtype is kept, so a float column stays float. The index
# is left out where it is the ``_time_utc`` column (a database) or a RangeIndex.

_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}


def to_json(df: pd.DataFrame) -> str:
    """The JSON text of a DataFrame, read back exactly by ``from_json``."""
    import pandas as pd

    index = None
    if "_time_utc" not in df and not isinstance(df.index, pd.RangeIndex):
        index = [_json_value(value) for value in df.index]
    head = {
        "columns": [str(column) for column in df.columns],
        "dtypes": {str(column): str(dtype) for column, dtype in df.dtypes.items()},
        "index": index,
    }
    # one row a line, so that a baseline kept in git diffs row by row
    rows = ",\n".join(
        json.dumps(_json_row(df, number, row), allow_nan=False)
        for number, row in enumerate(df.itertuples(index=False, name=None))
    )
    return json.dumps(head, allow_nan=False)[:-1] + f', "data": [\n{rows}\n]}}\n'


def _json_row(df: pd.DataFrame, number: int, row: tuple[Any, ...]) -> list[Any]:
    """A row's values as JSON can hold them; a value that contains itself (a list
    appended to itself) is a PsweepError naming the row and column."""
    values = []
    for column, value in zip(df.columns, row):
        try:
            values.append(_json_value(value))
        except RecursionError:
            pset_id = df["_pset_id"].iloc[number] if "_pset_id" in df else None
            raise PsweepError(
                f"row {number}"
                + (f" (_pset_id {pset_id})" if pset_id is not None else "")
                + f", column {column!r}: its value contains itself, which JSON cannot "
                f"hold; nothing was written: export to .csv (values as text), or leave "
                f"the row out (--query \"_pset_id != '{pset_id}'\")"
            ) from None
    return values


def _json_value(value: Any) -> Any:
    """A value as JSON can hold it (see the format above)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    kind = type(value)
    if kind is int:
        return value
    if kind is float or isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float(value)
    if kind.__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):  # datetime, pandas.Timestamp (nanoseconds kept)
        return value.isoformat()
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):  # scalars and arrays
        return _json_value(value.tolist())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _json_value(float(value))
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return str(value)


def from_json(text: str) -> pd.DataFrame:
    """A DataFrame from the JSON text of ``to_json``; also reads pandas' ``split`` and
    ``records`` orientations as other tools write them."""
    import pandas as pd

    document = json.loads(text)
    if not isinstance(document, dict) or "dtypes" not in document:
        orient = "records" if isinstance(document, list) else "split"
        frame = pd.read_json(io.StringIO(text), orient=orient, precise_float=True)
        if "_time_utc" in frame:
            frame["_time_utc"] = pd.to_datetime(frame["_time_utc"], utc=True)
            _index_by_time(frame)
        return frame
    columns = document["columns"]
    frame = pd.DataFrame(document["data"], columns=columns, dtype=object)
    if not document["data"]:
        frame = pd.DataFrame({column: [] for column in columns}, dtype=object)
    for column, dtype in document["dtypes"].items():
        frame[column] = _typed(frame[column], dtype)
    if "_time_utc" in frame:
        _index_by_time(frame)
    elif document.get("index") is not None:
        frame.index = pd.Index(document["index"])
    return frame


def _typed(column: pd.Series, dtype: str) -> pd.Series:
    """A column of JSON values with its dtype back."""
    import numpy as np
    import pandas as pd

    if dtype.startswith("datetime64"):
        times = pd.to_datetime(column, utc="UTC" in dtype or "+" in dtype)
        return times.astype(dtype)
    if dtype.startswith(("float", "Float")):
        values = [np.nan if value is None else _INFINITIES.get(value, value) for value in column]
        return pd.Series(values, index=column.index, dtype=dtype)
    if dtype.startswith(("int", "uint", "Int", "UInt", "bool", "boolean", "str")):
        return column.astype(dtype)
    return column


def fmt_of(path: str | os.PathLike[str]) -> str:
    """``"json"`` for a ``.json`` file, else ``"pickle"``."""
    return "json" if str(path).lower().endswith(".json") else "pickle"


class Columns:
    """Rows gathered column by column, in first-seen order of their keys, as a
    DataFrame is built from them; a key a row lacks is None in that row."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.columns: dict[str, list[Any]] = {}
        self.count = 0
        for row in rows:
            self.add(row)

    def add(self, row: dict[str, Any]) -> None:
        columns = self.columns
        count = self.count
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * count
            column.append(value)
        self.count = count = count + 1
        if len(row) != len(columns):  # the row lacks keys of earlier rows
            for column in columns.values():
                if len(column) < count:
                    column.append(None)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame indexed by ``_time_utc``."""
        import pandas as pd

        frame = pd.DataFrame({key: typed(values) for key, values in self.columns.items()})
        if "_time_utc" in frame:
            # rows carry _time_utc in wire form: integer microseconds since the epoch
            frame["_time_utc"] = pd.to_datetime(frame["_time_utc"], unit="us", utc=True)
            _index_by_time(frame)
        return frame


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts) to a DataFrame indexed by ``_time_utc``, columns in first-seen order."""
    return Columns(rows).frame()


def _index_by_time(frame: pd.DataFrame) -> None:
    """Index the database by ``_time_utc``, as psweep's README shows it."""
    import pandas as pd

    frame.index = pd.DatetimeIndex(frame["_time_utc"]).rename(None)


def concat(old: pd.DataFrame | None, new: pd.DataFrame, release: bool = False) -> pd.DataFrame:
    """Append new rows below old ones; columns missing on one side become NA.
    ``release``: the caller is done with ``old``; if it is big, its columns go as they
    are copied (``stacking.stack``: old, new and both are never whole at once)."""
    import pandas as pd

    if old is None or len(old) == 0:
        return new
    if len(new) == 0:
        return old
    floats = {c for frame in (old, new) for c in frame.columns[frame.dtypes == "Float64"]}
    if release and old.size >= stacking.WORTH_IT and stacking.stackable(old, new):
        both = stacking.stack(old, new, _nullable)
    else:
        old, new = _nullable(old, new.columns), _nullable(new, old.columns)
        with warnings.catch_warnings():
            # sweeps with different parameter names share one database: NA is intended
            warnings.simplefilter("ignore", FutureWarning)
            both = pd.concat([old, new], sort=False)
    for column in both.columns[both.dtypes == "Float64"]:
        if column not in floats:
            # ints (Int64) and floats (float64) of one column: floats, NaN missing
            both[column] = both[column].astype(float)
    return both


# -- dtypes -------------------------------------------------------------------------
# A column of integers stays integer where some rows lack a value (pandas' nullable
# Int64, not float64), a column of booleans boolean (not object); other columns get
# the dtype pandas gives their values (float64, datetime64, str, object).

_NULLABLE = {"i": "Int64", "u": "Int64", "b": "boolean"}


def typed(values: list[Any]) -> Any:
    """A column's values (None where a row lacks one) as an array of the column's
    dtype: Int64 or boolean where ints or bools have gaps, else as they are."""
    import pandas as pd

    present = [value for value in values if value is not None]
    if len(present) == len(values) or not present:
        return values
    kinds = {_kind(value) for value in present}
    if kinds == {"b"}:
        return pd.array(values, dtype="boolean")
    if kinds == {"i"} and all(-(2**63) <= int(value) < 2**63 for value in present):
        return pd.array(values, dtype="Int64")
    return values


def _kind(value: Any) -> str:
    """The kind of a value: "b" a bool, "i" an integer, "" anything else."""
    kind = type(value)
    if kind is bool or (kind.__module__ == "numpy" and kind.__name__ == "bool"):
        return "b"
    if kind is int or (kind.__module__ == "numpy" and isinstance(value, numbers.Integral)):
        return "i"
    return ""


def _nullable(frame: pd.DataFrame, others: Any) -> pd.DataFrame:
    """frame with its int and bool columns that ``others`` lacks made nullable (Int64,
    boolean): below or above rows without them, they stay ints and bools."""
    lacking = [c for c in frame.columns if c not in others and frame[c].dtype.kind in _NULLABLE]
    if not lacking:
        return frame
    return frame.astype({c: _NULLABLE[frame[c].dtype.kind] for c in lacking})


def assign_counters(new: pd.DataFrame, *before: pd.DataFrame | None) -> None:
    """Number new rows after the rows before: ``_pset_seq`` per row, ``_run_seq`` per run."""
    import numpy as np
    import pandas as pd

    pset_seq = -1
    run_seqs: dict[str, int] = {}
    for old in before:
        if old is None or len(old) == 0:
            continue
        if "_pset_seq" in old:
            pset_seq = max(pset_seq, int(old["_pset_seq"].max()))
        if "_run_seq" in old and "_run_id" in old:
            pairs = old[["_run_id", "_run_seq"]].drop_duplicates("_run_id")
            run_seqs.update(zip(pairs["_run_id"], pairs["_run_seq"].astype(int)))
    next_run = max(run_seqs.values(), default=-1) + 1
    codes, run_ids = pd.factorize(new["_run_id"])  # run ids in order of appearance
    numbers = []
    for run_id in run_ids:
        if run_id not in run_seqs:
            run_seqs[run_id] = next_run
            next_run += 1
        numbers.append(run_seqs[run_id])
    new["_pset_seq"] = np.arange(pset_seq + 1, pset_seq + 1 + len(new))
    new["_run_seq"] = np.asarray(numbers, dtype=np.int64)[codes]


def lock_timeout_seconds(value: str | float | None = None) -> float:
    """The lock timeout: ``value`` if given, else $PSWEEP_LOCK_TIMEOUT, else 600 s."""
    if value is None or value == "":
        value = os.environ.get(LOCK_TIMEOUT_ENV, "") or LOCK_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise PsweepError(f"lock timeout {value!r} is not a number of seconds") from None
    if seconds < 0 or math.isnan(seconds):
        raise PsweepError(
            f"lock timeout {value!r} is not a number of seconds >= 0 (inf: wait for ever)"
        )
    return seconds


def file_lock(path: str) -> FileLock:
    """The lock of a lock file. filelock is imported here, where a lock is made: every
    pytest run with the plugin installed imports this module, and xdist workers never
    lock anything."""
    from filelock import FileLock

    return FileLock(path)


def row_keys(frame: pd.DataFrame) -> Iterator[RowKey]:
    """Each row's (``_sweep``, ``_pset_hash``, ``_case_hash``): what skip-dups and
    compare match rows by. ``_case_hash`` is "" for a row without other
    parametrizations (and in databases older than the column)."""
    cases = frame["_case_hash"].fillna("") if "_case_hash" in frame else [""] * len(frame)
    return zip(frame["_sweep"], frame["_pset_hash"], cases)


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row (by ``_pset_seq``, else ``_time_utc``) per key of
    ``KEY_COLUMNS`` (those present), in database order."""
    key = [column for column in KEY_COLUMNS if column in frame]
    if not key or len(frame) == 0:
        return frame
    order = next((c for c in ("_pset_seq", "_time_utc") if c in frame), None)
    ordered = frame.sort_values(order, kind="stable") if order else frame
    return ordered.drop_duplicates(key, keep="last")


def latest_passed(database: pd.DataFrame | None) -> pd.DataFrame | None:
    """The newest passed row per key (``row_keys``); None when the database has no
    such rows (none yet, or rows of ``ps.run`` only)."""
    if database is None or len(database) == 0:
        return None
    if not {"_sweep", "_pset_hash", "_outcome"} <= set(database.columns):
        return None
    return latest_rows(database[database["_outcome"] == "passed"])
