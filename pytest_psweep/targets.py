"""Where a report or an export may be written (issue 21.6).

Never into a calc dir's own files (its database, lock, journals, shards, kept
modules, tmpsave rows): ``psweep report calc -o calc/results.pk`` would replace the
database with HTML. Never over a file that is not one of ours unless asked
(``--force``): a report is ours when it carries the page's generator mark, an
export when it holds one of psweep's book-keeping columns.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PsweepError
from .names import BACKUP_SCRIPT, DATABASE, JOURNAL_DIR, LEGACY_DATABASE, TMPSAVE

GENERATOR = b'<meta name="generator" content="pytest-psweep">'
REPORT_MARKS = (GENERATOR, b"by pytest-psweep</p>")  # the second: reports of 0.1's page
# an export holds at least one book-keeping column (a CSV's header, a JSON's keys, a
# Parquet file's schema at its end)
EXPORT_MARKS = (b"_pset_id", b"_pset_hash", b"_run_seq", b"_pset_seq", b"_outcome", b"_sweep")
_SHARDS_DIR = "shards"  # shards.SHARDS_DIR (shards imports calcdir; kept import-light)
_OWN = {DATABASE, DATABASE + ".lock", LEGACY_DATABASE, JOURNAL_DIR, _SHARDS_DIR}
_OWN |= {BACKUP_SCRIPT, TMPSAVE}
_PEEK = 1 << 16  # bytes read at each end of an existing file to tell whether it is ours


def calc_dir_file(target: Path) -> Path | None:
    """The calc dir whose own file (or folder) ``target`` is, else None."""
    resolved = target.resolve()
    for folder in resolved.parents:
        relative = resolved.relative_to(folder)
        if relative.parts[0] in _OWN and _is_calc_dir(folder):
            return folder
    return None


def _is_calc_dir(folder: Path) -> bool:
    return any((folder / name).exists() for name in (DATABASE, LEGACY_DATABASE, JOURNAL_DIR))


def check(
    target: Path, what: str, force: bool, marks: tuple[bytes, ...], source: Path | None = None
) -> None:
    """Refuse ``target`` (PsweepError naming it and the way out) if it is the
    ``source`` database, a calc dir's own file, a folder, or an existing file
    without one of ``marks`` in its first or last bytes (not ours) and not ``force``."""
    calc_dir = calc_dir_file(target)
    if calc_dir is not None:
        raise PsweepError(
            f"{what} {target}: that is a file of calc dir {calc_dir} (its database, "
            "journals or shards) and is never written over; choose a path outside it, "
            f"e.g. {calc_dir.parent / (calc_dir.name + '-' + target.name)}"
        )
    if source is not None and target.resolve() == source.resolve():
        raise PsweepError(f"{what} {target} is the database it is made from; choose another path")
    if target.is_dir():
        raise PsweepError(f"{what} {target} is a folder; give a file name")
    if target.exists() and not force and not _ours(target, marks):
        raise PsweepError(
            f"{what} {target} exists and was not written by psweep; choose another "
            f"path or move it away (or write over it: psweep {what} ... --force)"
        )


def _ours(path: Path, marks: tuple[bytes, ...]) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(_PEEK)
            size = fh.seek(0, 2)
            fh.seek(max(size - _PEEK, 0))
            tail = fh.read(_PEEK)
    except OSError:
        return False
    return any(mark in head or mark in tail for mark in marks)
