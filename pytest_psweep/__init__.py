"""pytest-psweep: parameter studies as pytest sweeps, and the psweep library API.

``import pytest_psweep as ps``: build params (``plist``, ``pgrid``, ...), run them
with ``ps.run(func, params)`` or as ``@ps.sweep(params)`` functions under
``pytest --psweep``; every row lands in ``<calc_dir>/results.pk``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import PsweepDuplicateKeyError, PsweepError, PsweepHashError
from .names import CALC_DIR, DATABASE

if TYPE_CHECKING:
    from .batch import FileTemplate as FileTemplate
    from .batch import Machine as Machine
    from .batch import gather_calc_templates as gather_calc_templates
    from .batch import gather_machines as gather_machines
    from .batch import prep_batch as prep_batch
    from .database import df_read as df_read
    from .database import df_to_json as df_to_json
    from .database import df_write as df_write
    from .engine import run as run
    from .frames import df_ensure_dtypes as df_ensure_dtypes
    from .frames import df_extract_dicts as df_extract_dicts
    from .frames import df_extract_params as df_extract_params
    from .frames import df_extract_pset as df_extract_pset
    from .frames import df_extract_row as df_extract_row
    from .frames import df_filter_conds as df_filter_conds
    from .frames import df_latest as df_latest
    from .frames import df_print as df_print
    from .frames import df_select as df_select
    from .frames import df_update_pset_cols as df_update_pset_cols
    from .frames import df_update_pset_hash as df_update_pset_hash
    from .helpers import file_read as file_read
    from .helpers import file_write as file_write
    from .helpers import filter_cols as filter_cols
    from .helpers import flatten as flatten
    from .helpers import flatten_dict as flatten_dict
    from .helpers import fullpath as fullpath
    from .helpers import get_many_uuids as get_many_uuids
    from .helpers import get_uuid as get_uuid
    from .helpers import intspace as intspace
    from .helpers import is_seq as is_seq
    from .helpers import itr as itr
    from .helpers import json_read as json_read
    from .helpers import json_write as json_write
    from .helpers import logspace as logspace
    from .helpers import makedirs as makedirs
    from .helpers import merge_dicts as merge_dicts
    from .helpers import pickle_read as pickle_read
    from .helpers import pickle_write as pickle_write
    from .helpers import system as system
    from .params import filter_params_dup_hash as filter_params_dup_hash
    from .params import filter_params_unique as filter_params_unique
    from .params import grid as grid
    from .params import itr2params as itr2params
    from .params import pgrid as pgrid
    from .params import plist as plist
    from .params import pset_hash as pset_hash
    from .params import stargrid as stargrid
    from .sweeps import sweep as sweep

__version__ = "0.1.0"

# psweep 0.16's constants; the database's name is this package's (README "Coming
# from psweep")
DATABASE_BASENAME = DATABASE
PANDAS_DEFAULT_ORIENT = "records"
PANDAS_TIME_UNIT = "s"
PSET_HASH_ALG = "sha1"

# The API, by module, loaded when first used (PEP 562): pytest imports this package
# in every run of an environment where the plugin is installed, and plain pytest
# must not pay for the engine, the database or multiprocessing (benchmarks/README.md)
_LAZY: dict[str, tuple[str, ...]] = {
    "batch": ("FileTemplate", "Machine", "gather_calc_templates", "gather_machines", "prep_batch"),
    "database": ("df_read", "df_to_json", "df_write"),
    "engine": ("run",),
    "frames": (
        "df_ensure_dtypes",
        "df_extract_dicts",
        "df_extract_params",
        "df_extract_pset",
        "df_extract_row",
        "df_filter_conds",
        "df_latest",
        "df_print",
        "df_select",
        "df_update_pset_cols",
        "df_update_pset_hash",
    ),
    "helpers": (
        "file_read",
        "file_write",
        "filter_cols",
        "flatten",
        "flatten_dict",
        "fullpath",
        "get_many_uuids",
        "get_uuid",
        "intspace",
        "is_seq",
        "itr",
        "json_read",
        "json_write",
        "logspace",
        "makedirs",
        "merge_dicts",
        "pickle_read",
        "pickle_write",
        "system",
    ),
    "params": (
        "filter_params_dup_hash",
        "filter_params_unique",
        "grid",
        "itr2params",
        "pgrid",
        "plist",
        "pset_hash",
        "stargrid",
    ),
    "sweeps": ("sweep",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    if name == "FILL_VALUE":  # pandas' NA, without importing pandas with this package
        import pandas as pd

        return pd.NA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "__version__",
    "CALC_DIR",
    "DATABASE",
    "DATABASE_BASENAME",
    "PANDAS_DEFAULT_ORIENT",
    "PANDAS_TIME_UNIT",
    "PSET_HASH_ALG",
    "PsweepDuplicateKeyError",
    "PsweepError",
    "PsweepHashError",
    *_MODULE_OF,
]
