"""psweep 0.16's DataFrame helpers: rows as dicts, params back from a database,
filters, printing (SPEC §8). Same names, arguments and results as psweep's.

Columns follow psweep's convention (``helpers.filter_cols``): ``_x`` is
book-keeping, ``x_`` a result, other columns parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .helpers import filter_cols
from .params import is_missing, pset_hash, row_hash

if TYPE_CHECKING:
    import pandas as pd


def df_extract_dicts(df: pd.DataFrame, py_types: bool = False) -> list[dict[str, Any]]:
    """Each row as a dict. ``py_types=True``: as pandas converts them
    (``Series.to_dict``, e.g. ``pd.NA`` becomes None); else the values as stored."""
    if py_types:
        return [series.to_dict() for _, series in df.iterrows()]
    columns = list(df.columns)
    return [dict(zip(columns, row)) for row in df.itertuples(index=False, name=None)]


def df_extract_params(df: pd.DataFrame, py_types: bool = False) -> list[dict[str, Any]]:
    """The psets of a database: each row's parameter columns (neither ``_x`` nor
    ``x_``), as given to ``run`` when results follow the ``x_`` convention."""
    return df_extract_dicts(df[filter_cols(df.columns, kind="pset")], py_types=py_types)


def df_extract_row(
    df: pd.DataFrame, pset_id: str, kind: str | None = None, py_types: bool = False
) -> dict[str, Any]:
    """The row of one ``_pset_id`` as a dict, only the columns of ``kind``
    (``filter_cols``) if given. A pset id that is not exactly once in ``df`` is an
    error."""
    selected = df.loc[df["_pset_id"] == pset_id]
    if kind is not None:
        selected = selected[filter_cols(df.columns, kind=kind)]
    if len(selected) != 1:
        raise ValueError(
            f"df_extract_row: _pset_id {pset_id!r} is in {len(selected)} rows, not in one"
        )
    # as df_extract_dicts gives it: the same value types, whatever the column dtypes
    return df_extract_dicts(selected, py_types=py_types)[0]


def df_extract_pset(df: pd.DataFrame, pset_id: str, py_types: bool = False) -> dict[str, Any]:
    """The parameters of one ``_pset_id``."""
    return df_extract_row(df, pset_id, kind="pset", py_types=py_types)


def df_filter_conds(
    df: pd.DataFrame, conds: Iterable[Sequence[bool]], op: str = "and"
) -> pd.DataFrame:
    """The rows where the boolean masks ``conds`` hold, combined with ``op``
    ("and", "or", "xor"); no masks: all rows."""
    import numpy as np

    masks = list(conds)
    if not masks:
        return df
    for index, mask in enumerate(masks):
        if len(mask) != len(df):
            raise ValueError(
                f"df_filter_conds: condition {index} has {len(mask)} values, the frame "
                f"{len(df)} rows"
            )
    if op not in ("and", "or", "xor"):
        raise ValueError(f"df_filter_conds: op={op!r} is not one of 'and', 'or', 'xor'")
    combined = masks[0] if len(masks) == 1 else getattr(np, f"logical_{op}").reduce(masks)
    return df[combined]


def df_update_pset_hash(df: pd.DataFrame, copy: bool = False) -> pd.DataFrame:
    """Set ``_pset_hash`` of every row from its parameter columns (missing values
    left out: ``params.row_hash``)."""
    out = df.copy() if copy else df
    out["_pset_hash"] = [row_hash(row) for row in df_extract_params(out)]
    return out


def df_update_pset_cols(
    df: pd.DataFrame,
    pset_cols: Iterable[str],
    fill_value: Any = None,
    copy: bool = False,
) -> pd.DataFrame:
    """Give ``df`` every parameter column of ``pset_cols`` (new ones filled with
    ``fill_value``, stored as ``pd.NA`` for None) and recompute ``_pset_hash``: a new
    column is a parameter with value ``fill_value``, as ``pset_hash`` of such a dict
    says, whether that value is missing or not (psweep's hashes)."""
    import pandas as pd

    out = df.copy() if copy else df
    old = set(filter_cols(out.columns, kind="pset"))
    new = set(pset_cols)
    if not old <= new:
        raise ValueError(
            f"df_update_pset_cols: the frame has parameter columns {sorted(old - new)} "
            "that pset_cols lacks"
        )
    filled = {column: fill_value for column in sorted(new - old)}
    for column in filled:
        out[column] = pd.NA if fill_value is None else fill_value
    # pset_cols are the parameters, missing values included, as psweep hashes them
    hashes = [pset_hash({**row, **filled}) for row in df_extract_dicts(out[sorted(old)])]
    dtype = out["_pset_hash"].dtype if "_pset_hash" in out else object
    out["_pset_hash"] = pd.Series(hashes, index=out.index, dtype=dtype)
    return out


def df_ensure_dtypes(df: pd.DataFrame, fill_value: Any = None) -> pd.DataFrame:
    """``df`` with every column of dtype object and missing scalars replaced by
    ``fill_value`` (default ``pd.NA``), as psweep keeps its frames."""
    import pandas as pd

    fill = pd.NA if fill_value is None else fill_value
    out = df.astype(object)
    for column in out.columns:
        out[column] = out[column].map(lambda v: fill if is_missing(v) else v)
    return out.astype(object)


def df_print(
    df: pd.DataFrame,
    index: bool = False,
    special_cols: bool | None = None,
    prefix_cols: bool = False,
    cols: Sequence[str] = (),
    skip_cols: Sequence[str] = (),
) -> None:
    """Print a frame without its index and book-keeping columns (``_x``), columns
    sorted by name. ``prefix_cols=True``: with book-keeping; ``cols``: these columns
    (and book-keeping with ``prefix_cols``); ``skip_cols``: all but these."""
    if special_cols is not None:
        warnings.warn("special_cols is deprecated, use prefix_cols", DeprecationWarning, 2)
        prefix_cols = special_cols
    prefix = {c for c in df.columns if str(c).startswith("_")}
    if cols:
        if skip_cols:
            raise ValueError("df_print: use either cols or skip_cols")
        shown = set(cols) | (prefix if prefix_cols else set())
    else:
        shown = set(df.columns) - (set() if prefix_cols else prefix) - set(skip_cols)
    print(df[sorted(shown)].to_string(index=index))


# -- answers from a database (the psweep command and notebooks agree) -------------------

FAILED_OUTCOMES = ("failed", "crashed")


def df_latest(df: pd.DataFrame) -> pd.DataFrame:
    """The current result per pset: the newest row (by ``_pset_seq``) per ``_sweep``,
    ``_pset_hash`` and ``_case_hash`` (those present), in database order."""
    from .database import latest_rows

    return latest_rows(df)


def df_select(
    df: pd.DataFrame,
    *,
    latest: bool = False,
    failed: bool = False,
    sweep: str | None = None,
    query: str | None = None,
    sort: Sequence[str] = (),
    reverse: bool = False,
) -> pd.DataFrame:
    """Rows of a database as ``psweep show`` and ``psweep export`` select them:
    ``latest`` (``df_latest``), ``failed`` (``_outcome`` failed or crashed),
    ``sweep`` (``_sweep`` containing it, or matching it as a glob with ``*``),
    ``query`` (``DataFrame.query``), sorted by the columns ``sort``. A name that is no
    column is a PsweepError listing the columns."""
    from fnmatch import fnmatchcase

    from .errors import PsweepError

    require_columns(df, list(sort), "--sort")
    if latest:
        df = df_latest(df)
    if failed:
        require_columns(df, ["_outcome"], "--failed")
        df = df[df["_outcome"].isin(FAILED_OUTCOMES)]
    if sweep:
        require_columns(df, ["_sweep"], "--sweep")
        names = df["_sweep"].astype("string")
        pattern = sweep if "*" in sweep else f"*{sweep}*"
        df = df[[isinstance(n, str) and fnmatchcase(n, pattern) for n in names]]
    if query:
        try:
            df = df.query(query)
        except Exception as exc:
            raise PsweepError(f"--query {query!r}: {type(exc).__name__}: {exc}") from None
    if sort:
        df = df.sort_values(list(sort), ascending=not reverse, kind="stable")
    return df


def require_columns(df: pd.DataFrame, names: Iterable[Any], option: str) -> None:
    """A PsweepError naming the option, the columns ``df`` lacks and those it has."""
    from .errors import PsweepError

    unknown = [name for name in names if name not in df]
    if unknown:
        raise PsweepError(
            f"{option}: no column {', '.join(map(repr, unknown))}; the database has "
            f"{', '.join(map(str, df.columns))}"
        )
