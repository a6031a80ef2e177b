"""Copies of a calc dir and of the files that made its rows: backups
(``<calc_dir>_<newest _time_utc>``), the simulate copy (``<calc_dir>.simulate``) and
the kept sweep modules and scripts (``backup_script/``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PsweepError
from .targets import calc_dir_file

if TYPE_CHECKING:
    import pandas as pd

    from .calcdir import CalcDir


def backup(
    calc_dir: CalcDir, database: pd.DataFrame | None, since: float | None = None
) -> Path | None:
    """Copy the calc dir to ``<calc_dir>_<newest _time_utc>``; None if nothing to keep.
    ``since``: when the session began; the pset folders it made already (an xdist
    worker's, before the controller heard of its first pset) are left out."""
    if database is None or len(database) == 0 or not calc_dir.path.is_dir():
        return None
    target = calc_dir.backup(database["_time_utc"].max())
    if calc_dir_file(target) is not None:  # e.g. a calc dir inside another's journal/
        raise PsweepError(
            f"backup {target}: that is inside the own files of calc dir "
            f"{calc_dir_file(target)}; choose a calc dir outside it"
        )
    if not target.exists():
        # links stay links (psweep's backups too): a link to a big file outside is
        # not copied, and one that points nowhere does not stop the backup
        new = _made_since(calc_dir.path, since)
        if new and "_pset_id" in database:
            new -= set(database["_pset_id"].astype(str))  # rows point there: kept

        def ignore(folder: str, names: list[str]) -> set[str]:
            locks = {name for name in names if name.endswith(".lock")}
            return locks | (new & set(names) if Path(folder) == calc_dir.path else set())

        shutil.copytree(calc_dir.path, target, symlinks=True, ignore=ignore)
    return target


def _made_since(folder: Path, since: float | None) -> set[str]:
    """The pset folders (named by a ``_pset_id``) in folder made at ``since`` or later."""
    if since is None:
        return set()
    made = set()
    for entry in os.scandir(folder):
        if _PSET_ID.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            if entry.stat(follow_symlinks=False).st_mtime >= since:
                made.add(entry.name)
    return made


_PSET_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def make_simulate_copy(calc_dir: CalcDir, since: float | None = None) -> CalcDir:
    """A fresh ``<calc_dir>.simulate`` holding a copy of the database only. ``since``:
    when the session began; the pset folders it made there already (an xdist
    worker's, before the controller heard of its first pset) are kept."""
    target = calc_dir.simulate
    if target.path.exists():
        kept = _made_since(target.path, since)
        for entry in os.scandir(target.path):
            if entry.name in kept:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    target.path.mkdir(parents=True, exist_ok=True)
    if calc_dir.database.exists():
        shutil.copy2(calc_dir.database, target.database)
    return target


def copy_source(source: str | os.PathLike[str], target: Path) -> None:
    """Keep a copy of a script or sweep module that produced rows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


INTERRUPTED = "interrupted"  # <calc_dir>/interrupted/<_pset_id>/: no row points there
SKIPPED = "skipped"  # <calc_dir>/skipped/<_pset_id>/: files of a pset skipped in setup


def move_interrupted(calc_dir: Path, pset_id: str, into: str = INTERRUPTED) -> Path | None:
    """Move the folder of a pset that gets no row (interrupted, or skipped in its
    fixtures) to ``<calc_dir>/<into>/<_pset_id>/``, so that every pset folder in the
    calc dir has its row; where it went, or None without one (an empty one is
    removed)."""
    folder = calc_dir / pset_id
    if not folder.is_dir():
        return None
    target = calc_dir / into / pset_id
    try:
        if not any(folder.iterdir()):
            folder.rmdir()
            return None
        target.parent.mkdir(exist_ok=True)
        folder.rename(target)
    except OSError:
        return None  # it stays: said nowhere, harmless
    return target
