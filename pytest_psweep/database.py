"""Databases as files: a DataFrame read and written atomically, rows gathered into one.

Knows the formats (a pickled ``pandas.DataFrame``, or JSON for sharing) and how rows
become a database: columns in first-seen order, ``_time_utc`` as the index, counters
continued after the rows before. Where the files of a calc dir live is ``calcdir``'s
business; this module is told the path.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PsweepError

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made, not at import
    import pandas as pd
    from filelock import FileLock


def df_read(path: str | os.PathLike[str], fmt: str = "pickle") -> pd.DataFrame:
    """Read a database file (``fmt="pickle"`` or ``"json"``); clear error if unreadable."""
    import pandas as pd

    path = Path(path)
    try:
        if fmt == "pickle":
            df = pd.read_pickle(path)
        elif fmt == "json":
            text = path.read_text()
            # "split" as df_write makes it, or "records" as other tools (and psweep
            # export) write it
            orient = "records" if text.lstrip().startswith("[") else "split"
            df = pd.read_json(io.StringIO(text), orient=orient)
            if "_time_utc" in df:
                df["_time_utc"] = pd.to_datetime(df["_time_utc"], utc=True)
                _index_by_time(df)
        else:
            raise PsweepError(f"df_read: unknown fmt {fmt!r}; use 'pickle' or 'json'")
    except PsweepError:
        raise
    except FileNotFoundError:
        raise PsweepError(f"database {path} does not exist") from None
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


def df_write(df: pd.DataFrame, path: str | os.PathLike[str], fmt: str = "pickle") -> None:
    """Write df to path atomically: a temp file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "pickle":
                pickle.dump(df, fh, protocol=pickle.HIGHEST_PROTOCOL)
            elif fmt == "json":
                fh.write(to_json(df, orient="split").encode())
            else:
                raise PsweepError(f"df_write: unknown fmt {fmt!r}; use 'pickle' or 'json'")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(df: pd.DataFrame, orient: str) -> str:
    """JSON text of df, as every JSON file of the package is written: ISO times to the
    nanosecond, 15 digits after the point (pandas' default keeps 10)."""
    text: str = df.to_json(
        orient=orient,
        date_format="iso",
        date_unit="ns",
        double_precision=15,
        default_handler=str,
    )
    return text


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

        frame = pd.DataFrame(self.columns)
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


def concat(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Append new rows below old ones; columns missing on one side become NA."""
    import pandas as pd

    if old is None or len(old) == 0:
        return new
    if len(new) == 0:
        return old
    with warnings.catch_warnings():
        # sweeps with different parameter names share one database: NA is intended
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat([old, new], sort=False)


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


def file_lock(path: str) -> FileLock:
    """The lock of a lock file. filelock is imported here, where a lock is made: every
    pytest run with the plugin installed imports this module, and xdist workers never
    lock anything."""
    from filelock import FileLock

    return FileLock(path)


def latest_passed(database: pd.DataFrame | None) -> pd.DataFrame | None:
    """The newest passed row per sweep and pset (``_sweep``, ``_pset_hash``); None
    when the database has no such rows (none yet, or rows of ``ps.run`` only)."""
    if database is None or len(database) == 0:
        return None
    if not {"_sweep", "_pset_hash", "_outcome"} <= set(database.columns):
        return None
    passed = database[database["_outcome"] == "passed"]
    order = "_pset_seq" if "_pset_seq" in passed else "_time_utc"
    return passed.sort_values(order, kind="stable").drop_duplicates(
        ["_sweep", "_pset_hash"], keep="last"
    )
