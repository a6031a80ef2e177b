"""Databases that psweep wrote, recognised: why one cannot be appended to as it is,
and the refusal that names ``psweep migrate`` (which converts it, ``migrate``).

Below ``calcdir``, which refuses such a database when it reads one, and ``migrate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PsweepError

if TYPE_CHECKING:
    import pandas as pd


def needs_migration(df: pd.DataFrame) -> str | None:
    """Why rows cannot be appended to a database as it is (psweep's forms: naive
    times, no counters), or None."""
    import pandas as pd

    if len(df) == 0:
        return None
    if "_time_utc" in df and not isinstance(df["_time_utc"].dtype, pd.DatetimeTZDtype):
        return "its _time_utc values carry no time zone (psweep wrote them as naive UTC)"
    for counter in ("_pset_seq", "_run_seq"):
        if counter not in df:
            return f"it has no {counter} column"
        if df[counter].isna().any() or df[counter].dtype.kind not in "iu":
            return f"its {counter} column is not all integers"
    return None


def refusal(calc_dir: Path, why: str) -> PsweepError:
    return PsweepError(
        f"calc dir {calc_dir} holds a database that psweep wrote: {why}; nothing was "
        f"run or changed: convert it once with 'psweep migrate {calc_dir}' (it makes a "
        "backup first)"
    )
