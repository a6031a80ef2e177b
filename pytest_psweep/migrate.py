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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calcdir import CalcDir, Database
from .copies import backup
from .database import df_read, df_write
from .errors import PsweepError
from .frames import require_columns
from .helpers import filter_cols
from .legacy import needs_migration as needs_migration
from .legacy import refusal as refusal
from .names import LEGACY_DATABASE, counted
from .params import row_hash

if TYPE_CHECKING:
    import pandas as pd

PSWEEP_HASH = "_psweep_pset_hash"


def upgrade(
    df: pd.DataFrame,
    params: Sequence[str] | None = None,
    fill_times: bool = False,
    command: str = "psweep migrate CALC_DIR",
    source: str = "FILE",
) -> pd.DataFrame:
    """A psweep database in this package's form (a new frame; ``df`` unchanged).

    ``_pset_hash`` is computed from the parameter columns ``params``; by default
    psweep's own (``df_extract_params``): the columns that neither start nor end with
    ``_``. A result column without the ``_`` suffix must be left out by naming the
    parameters, or its value would make every pset new to ``skip_dups``.

    Missing counters are numbered on; a ``_time_utc`` that is no time is a
    PsweepError naming ``command`` with ``--fill-times`` (``fill_times``: the time of
    the row before, the text kept in ``_psweep_time_utc``); columns named twice are
    kept once where they hold the same values, else a PsweepError.
    """
    import numpy as np
    import pandas as pd

    out = _unique_columns(df.reset_index(drop=True), source).infer_objects()
    if "_time_utc" not in out:
        raise PsweepError(
            "the database has no _time_utc column: it is no psweep database, and nothing "
            "was changed; give it one in Python (ps.df_read, df['_time_utc'] = ..., "
            "ps.df_write) to migrate it, or use another calc dir"
        )
    out["_time_utc"] = _utc_times(out, fill_times, command)
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
        out["_run_seq"] = _run_counters(out["_run_id"], out.get("_run_seq"))
    else:  # no run ids: one run
        out["_run_seq"] = _filled(out.get("_run_seq"), np.zeros(len(out), dtype=np.int64))
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
    filled = values.to_numpy(dtype=float, na_value=np.nan, copy=True)  # pandas 3: read-only
    filled[missing] = np.arange(start, start + int(missing.sum()))
    return filled.astype(np.int64)


def _run_counters(run_ids: pd.Series, existing: Any) -> Any:
    """``_run_seq`` as integers: the existing ones kept; a row without one takes its
    run's (another row of the same ``_run_id``), else runs are numbered on after the
    largest, in the order they first appear."""
    import numpy as np
    import pandas as pd

    if existing is None:
        existing = pd.Series(np.nan, index=run_ids.index)
    values = pd.to_numeric(existing, errors="coerce")
    per_run: dict[Any, int] = {}
    for run_id, value in zip(run_ids, values):
        if not pd.isna(value):
            per_run[run_id] = max(per_run.get(run_id, int(value)), int(value))
    after = max(per_run.values(), default=-1) + 1
    for run_id in dict.fromkeys(run_ids):
        if run_id not in per_run:
            per_run[run_id] = after
            after += 1
    counters = [
        per_run[run_id] if pd.isna(value) else int(value) for run_id, value in zip(run_ids, values)
    ]
    return np.asarray(counters, dtype=np.int64)


def _unique_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """df with each column name once: copies that hold the same values are dropped;
    names twice with different values are a PsweepError."""
    twice = list(dict.fromkeys(df.columns[df.columns.duplicated()]))
    if not twice:
        return df
    for name in twice:
        copies = df.loc[:, df.columns == name]
        first = copies.iloc[:, 0]
        if not all(copies.iloc[:, n].equals(first) for n in range(1, copies.shape[1])):
            raise PsweepError(
                f"the database has {copies.shape[1]} columns named {name!r} with different "
                "values, and this package cannot tell which is the parameter or result; "
                f"nothing was changed: rename them in Python (df = ps.df_read({source!r}); "
                f"df.columns = [...]; ps.df_write(df, {source!r})) and migrate again"
            )
    return df.loc[:, ~df.columns.duplicated()]


def _utc_times(out: pd.DataFrame, fill: bool, command: str) -> pd.Series:
    """``_time_utc`` as UTC times (psweep's naive ones are UTC); values that are no
    time filled from the row before (after) with ``fill``, else a PsweepError."""
    import pandas as pd

    raw = out["_time_utc"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        times = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    bad = times.isna().to_numpy()
    if not bad.any():
        return times
    examples = ", ".join(f"row {n}: {raw.iloc[n]!r}" for n in bad.nonzero()[0][:3])
    if not fill or bad.all():
        raise PsweepError(
            f"{int(bad.sum())} of {len(raw)} rows have a _time_utc that is no time "
            f"({examples}); nothing was changed: "
            + (
                f"run '{command} --fill-times' to give each the time of the row before "
                "it (its text is kept in _psweep_time_utc)"
                if not bad.all()
                else "no row has a time to take: set _time_utc in Python and migrate again"
            )
        )
    out["_psweep_time_utc"] = [str(value) if flag else None for value, flag in zip(raw, bad)]
    return times.ffill().bfill()


@dataclass
class Migration:
    source: Path | None  # the file converted; None if there was nothing to do
    rows: int
    backup: Path | None
    reason: str | None  # why it needed converting

    def __str__(self) -> str:
        if self.source is None:
            return "nothing to migrate: the database is already in this package's form"
        rows = counted(self.rows, "row")
        return f"migrated {rows} of {self.source} ({self.reason}); backup: {self.backup}"


def migrate(
    calc_dir: str | Path, params: Sequence[str] | None = None, fill_times: bool = False
) -> Migration:
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
            waiting = [
                f"'psweep {command} {calc.path}'"
                for command, folder in (
                    ("recover", calc.journal_dir),
                    ("merge", calc.path / "shards"),
                )
                if folder.is_dir() and any(folder.iterdir())
            ]
            raise PsweepError(
                f"calc dir {calc.path} has neither {calc.database.name} nor {LEGACY_DATABASE}"
                + (
                    f"; its rows wait in journals or shard files: {' and '.join(waiting)} "
                    "puts them into the database (nothing to migrate)"
                    if waiting
                    else ""
                )
            )
        old = ours if ours is not None else df_read(source)
        reason = needs_migration(old) or f"psweep's {LEGACY_DATABASE}"
        command = f"psweep migrate {calc.path}"
        try:
            new = upgrade(old, params, fill_times, command, str(source))
        except PsweepError as exc:
            raise PsweepError(f"{source}: {exc}") from None
        except Exception as exc:  # a form of database no test has seen: no traceback
            raise PsweepError(
                f"{source} cannot be converted ({type(exc).__name__}: {exc}); nothing was "
                "changed: convert it in Python (ps.df_read, pytest_psweep.migrate.upgrade, "
                "ps.df_write) or report the database's form as a bug"
            ) from exc
        kept = backup(calc, new)
        df_write(new, calc.database)
        if source != calc.database:
            source.unlink()
    return Migration(source, len(new), kept, reason)
