"""pytest-psweep: parameter studies as pytest sweeps, and the psweep library API.

``import pytest_psweep as ps``: build params (``plist``, ``pgrid``, ...), run them
with ``ps.run(func, params)`` or as ``@ps.sweep(params)`` functions under
``pytest --psweep``; every row lands in ``<calc_dir>/results.pk``.
"""

from __future__ import annotations

from typing import Any

from .batch import FileTemplate, Machine, gather_calc_templates, gather_machines, prep_batch
from .calcdir import CALC_DIR, DATABASE
from .database import df_read, df_to_json, df_write
from .engine import run
from .errors import PsweepDuplicateKeyError, PsweepError, PsweepHashError
from .frames import (
    df_ensure_dtypes,
    df_extract_dicts,
    df_extract_params,
    df_extract_pset,
    df_extract_row,
    df_filter_conds,
    df_latest,
    df_print,
    df_select,
    df_update_pset_cols,
    df_update_pset_hash,
)
from .helpers import (
    file_read,
    file_write,
    filter_cols,
    flatten,
    flatten_dict,
    fullpath,
    get_many_uuids,
    get_uuid,
    intspace,
    is_seq,
    itr,
    json_read,
    json_write,
    logspace,
    makedirs,
    merge_dicts,
    pickle_read,
    pickle_write,
    system,
)
from .params import (
    filter_params_dup_hash,
    filter_params_unique,
    grid,
    itr2params,
    pgrid,
    plist,
    pset_hash,
    stargrid,
    sweep,
)

__version__ = "0.1.0"

# psweep 0.16's constants; the database's name is this package's (README "Coming
# from psweep")
DATABASE_BASENAME = DATABASE
PANDAS_DEFAULT_ORIENT = "records"
PANDAS_TIME_UNIT = "s"
PSET_HASH_ALG = "sha1"


def __getattr__(name: str) -> Any:
    if name == "FILL_VALUE":  # pandas' NA, without importing pandas with this package
        import pandas as pd

        return pd.NA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "CALC_DIR",
    "DATABASE",
    "DATABASE_BASENAME",
    "FileTemplate",
    "Machine",
    "PANDAS_DEFAULT_ORIENT",
    "PANDAS_TIME_UNIT",
    "PSET_HASH_ALG",
    "PsweepDuplicateKeyError",
    "PsweepError",
    "PsweepHashError",
    "df_ensure_dtypes",
    "df_extract_dicts",
    "df_extract_params",
    "df_extract_pset",
    "df_extract_row",
    "df_filter_conds",
    "df_latest",
    "df_print",
    "df_read",
    "df_select",
    "df_to_json",
    "df_update_pset_cols",
    "df_update_pset_hash",
    "df_write",
    "file_read",
    "file_write",
    "filter_cols",
    "filter_params_dup_hash",
    "filter_params_unique",
    "flatten",
    "flatten_dict",
    "gather_calc_templates",
    "gather_machines",
    "fullpath",
    "get_many_uuids",
    "get_uuid",
    "grid",
    "intspace",
    "is_seq",
    "itr",
    "itr2params",
    "json_read",
    "json_write",
    "logspace",
    "makedirs",
    "merge_dicts",
    "pgrid",
    "pickle_read",
    "pickle_write",
    "plist",
    "prep_batch",
    "pset_hash",
    "run",
    "stargrid",
    "sweep",
    "system",
]
