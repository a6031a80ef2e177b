"""What a pytest session with ``--psweep`` is told and what it learns.

``Options``: the psweep options, resolved once from command line and ini
(``options.resolve``) and never changed. ``State``: what the session learns while it
collects (its sweeps, their parameters) and what the controller hands every worker
from the database (done psets, baseline rows, provenance). Both live in the
config's stash; without ``--psweep`` neither exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .names import RowKey

if TYPE_CHECKING:
    from .selection import Selection
    from .shards import Shard
    from .sweeps import SweepInfo


@dataclass(frozen=True)
class Options:
    """The session's psweep options, resolved from command line and ini."""

    calc_dir: Path  # as configured, absolute
    target: Path  # where rows go: the calc dir, its simulate copy (the controller's)
    run_id: str  # the _run_id of this session's rows (the controller's)
    simulate: bool
    backup: bool
    skip_dups: bool
    compare: Path | None  # baseline database of --psweep-compare
    rtol: float
    atol: float
    lock_timeout: float  # seconds to wait for the database's lock
    select: Selection | None = None  # --psweep-select
    shard: Shard | None = None  # --psweep-shard: this job array task's psets only
    chosen_run_id: bool = False  # --psweep-run-id (or a SLURM array's): shared by tasks
    progress_seconds: float = 10.0  # a progress line at most this often (0: none)
    html: bool = False  # pytest-html writes a report: sweep reports carry text for it
    junitxml: bool = False  # --junitxml: sweep reports carry properties
    report: Path | None = None  # --psweep-report: the HTML report, written at the end
    compare_ignore: tuple[str, ...] = ()  # psweep_compare_ignore: results not compared
    worker: bool = False  # an xdist worker
    # --collect-only, --setup-plan, --setup-only, --fixtures: nothing runs, nothing
    # is written
    dry_run: bool = False


@dataclass
class State:
    """What the session learns: from collection, and (handed to every worker) from
    the database before the first pset runs."""

    done: set[RowKey] = field(default_factory=set)  # keys of passed rows (skip-dups)
    baseline: dict[RowKey, dict[str, Any]] = field(default_factory=dict)  # compare
    provenance: dict[str, Any] = field(default_factory=dict)  # _git_commit, ...
    # sweep function -> its pytest.params, from collection until parametrize takes them
    pending: dict[Any, list[Any]] = field(default_factory=dict)
    sweeps: dict[str, SweepInfo] = field(default_factory=dict)  # by sweep id
    # under --psweep-select or --psweep-shard: each sweep's number of psets before
    # choosing
    unselected: dict[str, int] = field(default_factory=dict)
    # the names of all parameters collected (a name in --psweep-select must be one),
    # and per parameter, kind of value ("number", "str", ...) -> the sweeps giving it
    param_names: set[str] = field(default_factory=set)
    param_kinds: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # a calc dir of sweeps that have their own -> its done keys and baseline rows
    own_databases: dict[Path, tuple[set[RowKey], dict[RowKey, dict[str, Any]]]] = field(
        default_factory=dict
    )
    # the folders of psets interrupted by Ctrl-C, moved out of the way (no row for them)
    moved: list[Path] = field(default_factory=list)


OPTIONS = pytest.StashKey[Options]()
STATE = pytest.StashKey[State]()


def options_of(config: pytest.Config) -> Options | None:
    """The session's options; None without ``--psweep``."""
    return config.stash.get(OPTIONS, None)


def state_of(config: pytest.Config) -> State:
    """The session's state (only under ``--psweep``)."""
    return config.stash[STATE]
