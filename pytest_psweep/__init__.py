"""pytest-psweep: parameter studies as pytest sweeps, and the psweep library API.

``import pytest_psweep as ps``: build params (``plist``, ``pgrid``, ...), run them
with ``ps.run(func, params)`` or as ``@ps.sweep(params)`` functions under
``pytest --psweep``; every row lands in ``<calc_dir>/results.pk``.
"""

from __future__ import annotations

from .calcdir import CALC_DIR, DATABASE
from .database import df_read, df_write
from .engine import run
from .errors import PsweepError
from .params import (
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

__all__ = [
    "CALC_DIR",
    "DATABASE",
    "PsweepError",
    "df_read",
    "df_write",
    "filter_params_unique",
    "grid",
    "itr2params",
    "pgrid",
    "plist",
    "pset_hash",
    "run",
    "stargrid",
    "sweep",
]
