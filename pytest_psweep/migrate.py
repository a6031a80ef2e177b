"""Databases that psweep wrote, made this package's (SPEC §8).

psweep 0.4 wrote ``results.pk`` with naive ``_time_utc`` and no counters; later
versions write ``database.pk``, every column of dtype object, hashes of their own.
Appending to either as it is would mix time zones and leave NaN counters that break
every later run, so a calc dir holding one is refused (``needs_migration``) until
``psweep migrate CALC_DIR`` converts it (``migrate``): after a backup, in one
atomic write, idempotent. What psweep did not store is filled in (``_pset_seq``,
``_run_seq``, a UTC ``_time_utc``, this package's ``_pset_hash`` from the
parameter columns, psweep's kept as ``_psweep_pset_hash``); values that exist are
not changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calcdir import LEGACY_DATABASE, CalcDir, Database, backup
from .database import df_read, df_write
from .errors import PsweepError
from .frames import require_columns
from .helpers import filter_cols
from .params import row_hash

if TYPE_CHECKING:
    import pandas as pd

PSWEEP_HASH = "_psweep_pset_hash"


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


def upgrade(df: pd.DataFrame, params: Sequence[str] | None = None) -> pd.DataFrame:
    """A psweep database in this package's form (a new frame; ``df`` unchanged).

    ``_pset_hash`` is computed from the parameter columns ``params``; by default
    psweep's own (``df_extract_params``): the columns that neither start nor end with
    ``_``. A result column without the ``_`` suffix must be left out by naming the
    parameters, or its value would make every pset new to ``skip_dups``.
    """
    import numpy as np
    import pandas as pd

    out = df.reset_index(drop=True).infer_objects()
    if "_time_utc" not in out:
        raise PsweepError("the database has no _time_utc column: it is no psweep database")
    times = pd.to_datetime(out["_time_utc"])
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    out["_time_utc"] = times
    if "_pset_hash" in out and PSWEEP_HASH not in out:
        out[PSWEEP_HASH] = out["_pset_hash"]
    if params is None:
        params = filter_cols([c for c in out.columns if isinstance(c, str)], kind="pset")
    require_columns(out, params, "--params")
    params = list(params)
    out["_pset_hash"] = [
        row_hash(dict(zip(params, row))) for row in out[params].itertuples(index=False, name=None)
    ]
    out["_pset_seq"] = _filled(out.get("_pset_seq"), np.arange(len(out)))
    if "_run_id" in out:
        run_ids = out["_run_id"]
        first_seen = {run_id: n for n, run_id in enumerate(dict.fromkeys(run_ids))}
        by_order = np.asarray([first_seen[run_id] for run_id in run_ids])
        out["_run_seq"] = _filled(out.get("_run_seq"), by_order)
    out.index = pd.DatetimeIndex(out["_time_utc"]).rename(None)
    return out


def _filled(existing: Any, fallback: Any) -> Any:
    """Counters as integers: the existing ones kept, missing ones numbered on after
    the largest (in row order)."""
    import numpy as np
    import pandas as pd

    if existing is None:
        return fallback.astype(np.int64)
    values = pd.to_numeric(existing, errors="coerce")
    missing = values.isna().to_numpy()
    if not missing.any():
        return values.astype(np.int64).to_numpy()
    start = int(values.max()) + 1 if (~missing).any() else 0
    filled = values.to_numpy(dtype=float, na_value=np.nan)
    filled[missing] = np.arange(start, start + int(missing.sum()))
    return filled.astype(np.int64)


@dataclass
class Migration:
    source: Path | None  # the file converted; None if there was nothing to do
    rows: int
    backup: Path | None
    reason: str | None  # why it needed converting

    def __str__(self) -> str:
        if self.source is None:
            return "nothing to migrate: the database is already in this package's form"
        return f"migrated {self.rows} rows of {self.source} ({self.reason}); backup: {self.backup}"


def migrate(calc_dir: str | Path, params: Sequence[str] | None = None) -> Migration:
    """Convert a psweep calc dir in place, under the database's lock. Idempotent; a
    crash at any point leaves either the old database or the new one (and a
    backup), never a half-converted one."""
    calc = CalcDir(Path(calc_dir).absolute())
    legacy = calc.path / LEGACY_DATABASE
    if not calc.path.is_dir():
        raise PsweepError(f"calc dir {calc.path} does not exist")
    database = Database(calc)
    with database._locked():
        ours = df_read(calc.database) if calc.database.exists() else None
        if ours is not None and needs_migration(ours) is None:
            if legacy.exists():  # a migration that stopped before it removed the old file
                old = df_read(legacy)
                if "_pset_id" in old and not old["_pset_id"].isin(ours["_pset_id"]).all():
                    raise PsweepError(
                        f"calc dir {calc.path} holds both {calc.database.name} and psweep's "
                        f"{LEGACY_DATABASE} with rows of its own; merge them by hand "
                        "(ps.df_read, pandas.concat) or move one away"
                    )
                legacy.unlink()
            return Migration(None, len(ours), None, None)
        source = calc.database if ours is not None else legacy
        if not source.exists():
            raise PsweepError(
                f"calc dir {calc.path} has neither {calc.database.name} nor {LEGACY_DATABASE}"
            )
        old = ours if ours is not None else df_read(source)
        reason = needs_migration(old) or f"psweep's {LEGACY_DATABASE}"
        new = upgrade(old, params)
        kept = backup(calc, new)
        df_write(new, calc.database)
        if source != calc.database:
            source.unlink()
    return Migration(source, len(new), kept, reason)
