"""The names every process of a study shares: the bottom floor of the package.

Defaults of the options, the calc dir's file names, the book-keeping columns that
key a row, and the attribute ``@ps.sweep`` leaves on a function. Nothing here
imports anything of the package (or pandas, or pytest): the plugin's entry point
reads these to register its options without loading the rest.
"""

from __future__ import annotations

import os

CALC_DIR = "calc"  # the default calc dir, relative to the rootdir
DATABASE = "results.pk"  # the database in a calc dir
SIMULATE_SUFFIX = ".simulate"  # <calc_dir>.simulate: the copy a simulation runs in
# a calc dir made by this package carries this file, so that collection under
# --psweep can tell it from a folder that is merely named like one
MARKER = ".psweep-calc-dir"
LEGACY_DATABASE = "database.pk"  # psweep's (since 0.5): refused until migrated
JOURNAL_DIR = "journal"
BACKUP_SCRIPT = "backup_script"
TMPSAVE = "tmpsave"
LOCK_TIMEOUT = 600.0  # seconds a run waits for the database's lock, by default
LOCK_TIMEOUT_ENV = "PSWEEP_LOCK_TIMEOUT"
RTOL = 1e-9  # --psweep-compare's default tolerances
ATOL = 0.0
PROGRESS_SECONDS = 10.0  # a progress line at most this often, by default

SWEEP_ATTR = "_psweep_sweep"  # what @ps.sweep sets on a function: a sweeps.Sweep

HASH_KEY = "_pset_hash"
CASE_KEY = "_case_hash"  # the values of a sweep item's other parametrizations, hashed
ATTEMPT_KEY = "_attempt"  # 1, 2, ... for each run of one item (pytest-rerunfailures)
REPEAT_KEY = "_repeat"  # pytest-repeat's repetition, 1-based as in its ids

# What --psweep-skip-dups and --psweep-compare match rows by: _sweep, _pset_hash and
# _case_hash ("" for an item that no other parametrization multiplies)
KEY_COLUMNS = ("_sweep", HASH_KEY, CASE_KEY)
RowKey = tuple[str, str, str]


def new_id() -> str:
    """A random UUID (version 4) as text; cheaper than ``str(uuid.uuid4())``."""
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def counted(count: int, noun: str) -> str:
    """``1 pset``, ``2 psets``: a count and its noun (plural with an s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unsure_psets(count: int, lost: str) -> str:
    """What a damaged journal or shard file says of its ``count`` started psets that
    are no crash (``journal.Decoder.unsure``), after the ``lost`` part it names."""
    if not count:
        return ""
    return (
        f", {counted(count, 'started pset')} without a row (theirs may be among the "
        f"{lost} lost: run them again with --psweep-skip-dups)"
    )
