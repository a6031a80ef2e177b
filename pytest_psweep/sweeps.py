"""What a pytest session knows of its sweeps: the settings, each sweep function, and
the pset a sweep item runs. Shared by the plugin (every process) and the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .engine import Run
from .errors import PsweepError
from .params import BOOKKEEPING, pset_hash
from .selection import Selection
from .shards import Shard

HASH_KEY = "_pset_hash"
CASE_KEY = "_case_hash"  # the values of a sweep item's other parametrizations, hashed
ATTEMPT_KEY = "_attempt"  # 1, 2, ... for each run of one item (pytest-rerunfailures)
REPEAT_KEY = "_repeat"  # pytest-repeat's repetition, 1-based as in its ids
_REPEAT_FIXTURE = "__pytest_repeat_step_number"  # pytest-repeat's parametrized fixture


# What --psweep-skip-dups and --psweep-compare match rows by: _sweep, _pset_hash and
# _case_hash ("" for an item that no other parametrization multiplies)
RowKey = tuple[str, str, str]


@dataclass
class Settings:
    """The session's psweep options, resolved from command line and ini."""

    calc_dir: Path  # as configured, absolute
    simulate: bool
    backup: bool
    skip_dups: bool
    compare: Path | None  # baseline database of --psweep-compare
    rtol: float
    atol: float
    lock_timeout: float  # seconds to wait for the database's lock
    run: Run
    select: Selection | None = None  # --psweep-select
    shard: Shard | None = None  # --psweep-shard: this job array task's psets only
    chosen_run_id: bool = False  # --psweep-run-id (or a SLURM array's): shared by tasks
    progress_seconds: float = 10.0  # a progress line at most this often (0: none)
    html: bool = False  # pytest-html writes a report: sweep reports carry text for it
    junitxml: bool = False  # --junitxml: sweep reports carry properties
    report: Path | None = None  # --psweep-report: the HTML report, written at the end
    compare_ignore: tuple[str, ...] = ()  # psweep_compare_ignore: results not compared
    worker: bool = False  # an xdist worker
    rootdir: Path | None = None  # the controller's (an xdist worker must collect there)
    done: set[RowKey] = field(default_factory=set)  # keys of passed rows
    baseline: dict[RowKey, dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # _git_commit, _git_dirty, ...
    # sweep function -> its pytest.params, from collection until parametrize takes them
    pending: dict[Any, list[Any]] = field(default_factory=dict)
    sweeps: dict[str, SweepInfo] = field(default_factory=dict)  # by sweep id
    # under --psweep-select or --psweep-shard: each sweep's number of psets before
    # choosing, and the names of all parameters collected (a name in the expression
    # must be one)
    unselected: dict[str, int] = field(default_factory=dict)
    param_names: set[str] = field(default_factory=set)
    # a calc dir of sweeps that have their own -> its done keys and baseline rows
    own_databases: dict[Path, tuple[set[RowKey], dict[RowKey, dict[str, Any]]]] = field(
        default_factory=dict
    )
    # parameter -> kind of value ("number", "str", ...) -> the sweeps giving such values
    param_kinds: dict[str, dict[str, set[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepInfo:
    """What collection knows of a sweep function, shared by all its items."""

    sweep_id: str  # the _sweep column: "<module node id>::<function>"
    argnames: tuple[str, ...]  # what the function is called with
    code_hash: str
    rtol: float | None
    atol: float | None
    calc_dir: str | None = None  # its own calc dir (absolute), None: the session's
    # per result: (rtol, atol), or None: not compared (ps.sweep(compare=...), the ini)
    tolerances: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(slots=True)
class SweepPset:
    """A sweep item's pset while the item runs: the dict its function and fixtures get
    (book-keeping set in place, taken back after teardown), its parameters, their
    hash, its sweep and the keys its function returned.

    Made when the item starts and dropped after its teardown: each object that 100k
    items keep alive is walked by every one of pytest's garbage collections, and a
    plain dict of numbers and strings is not tracked by the collector at all.
    """

    value: dict[str, Any]
    params: dict[str, Any]
    digest: str
    sweep: SweepInfo
    case: dict[str, Any]  # columns from the item's other parametrizations
    case_hash: str  # "" without them
    clash: str | None = None  # why the case cannot be columns of this pset's row
    returned: list[str] | tuple[str, ...] = ()  # the keys the function returned
    truth: dict[str, Any] = field(default_factory=dict)  # its true book-keeping

    @property
    def sweep_id(self) -> str:
        return self.sweep.sweep_id

    @property
    def key(self) -> RowKey:
        return (self.sweep.sweep_id, self.digest, self.case_hash)

    def restore(self) -> None:
        """Give the dict back its parameters, as collected, for the next item that
        shares it (a sweep stacked with another parametrize)."""
        self.value.clear()
        self.value.update(self.params)
        self.value[HASH_KEY] = self.digest


# A sweep item's report carries its row to the controller in one attribute of builtin
# types, which pytest serializes with the report and xdist sends to the controller.
_REPORT_ATTR = "psweep"


class ReportedRow(NamedTuple):
    """What a sweep item's report carries: its journal record (``journal.encode_row``),
    its outcome (``started`` for the record of a pset that started), under
    --psweep-compare the comparison's verdict and the differences found ([sweep, key,
    abs diff, rel diff], numbers or None), and the pset's id. (A tuple: made twice
    per pset, it must be cheap.)"""

    record: bytes
    outcome: str
    verdict: str | None
    pset_id: str
    diffs: list[list[Any]] | None = None
    calc_dir: str | None = None  # the sweep's own calc dir; None: the session's

    def attach(self, report: pytest.TestReport) -> None:
        setattr(report, _REPORT_ATTR, list(self))

    @classmethod
    def take(cls, report: pytest.TestReport) -> ReportedRow | None:
        """The row a report carries, taken off it (pytest keeps every report to the
        end, and each attribute is walked by its garbage collections at exit)."""
        carried = getattr(report, _REPORT_ATTR, None)
        if carried is None:
            return None
        delattr(report, _REPORT_ATTR)
        return cls._make(carried)


SETTINGS = pytest.StashKey[Settings]()
RUNNING = pytest.StashKey[SweepPset]()
ATTEMPTS = pytest.StashKey[int]()  # how often an item started (reruns)


def settings_of(config: pytest.Config) -> Settings | None:
    """The session's settings; None without ``--psweep``."""
    return config.stash.get(SETTINGS, None)


def item_value(params: dict[str, Any], digest: str) -> dict[str, Any]:
    """The dict a sweep item is parametrized with: its pset and the pset's hash, so
    that the item's pset is known from the value pytest hands it."""
    return {**params, HASH_KEY: digest}


def sweep_of(item: pytest.Item) -> SweepInfo | None:
    """A sweep item's sweep; None for other items."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("pset")
    settings = settings_of(item.config)
    if settings is None or not isinstance(value, dict) or HASH_KEY not in value:
        return None
    assert isinstance(item, pytest.Function) and item.parent is not None
    # None for a test of its own that has an argument named pset
    return settings.sweeps.get(f"{item.parent.nodeid}::{item.originalname}")


def sweep_pset(item: pytest.Item) -> SweepPset | None:
    """A new view of a sweep item's pset; None for other items."""
    sweep = sweep_of(item)
    if sweep is None:
        return None
    callspec = item.callspec  # type: ignore[attr-defined]
    value = callspec.params["pset"]
    params = dict(value)
    del params[HASH_KEY]
    if len(callspec.params) == 1:  # the common case: pset is the only parametrization
        return SweepPset(value, params, value[HASH_KEY], sweep, {}, "")
    case, case_hash = _case(callspec)
    clash = [
        name for name in case if name in params or (name in BOOKKEEPING and name != REPEAT_KEY)
    ]
    problem = None
    if clash:
        problem = (
            f"sweep {sweep.sweep_id}: the parametrization {', '.join(map(repr, clash))} "
            "has the name of a parameter of the pset or of a book-keeping column, so it "
            "cannot be a column of the row; rename it"
        )
        case = {name: v for name, v in case.items() if name not in clash}
    return SweepPset(value, params, value[HASH_KEY], sweep, case, case_hash, problem)


def _case(callspec: Any) -> tuple[dict[str, Any], str]:
    """The values of an item's other parametrizations (``@pytest.mark.parametrize``,
    parametrized fixtures, pytest-repeat) as columns, and their hash.

    A parametrized fixture's column holds its param (``request.param``), as pytest's
    ids do. The hash is by value (``pset_hash``); values it cannot hash are taken by
    the id pytest gave them, which is stable between runs too.
    """
    case = {}
    for name, value in callspec.params.items():
        if name == "pset":
            continue
        if name == _REPEAT_FIXTURE and isinstance(value, int):
            case[REPEAT_KEY] = value + 1
        else:
            case[name] = value
    try:  # prefixed: pset_hash leaves out keys starting with "_"
        digest = pset_hash({f"c{name}": value for name, value in case.items()})
    except (PsweepError, TypeError, ValueError):
        digest = pset_hash({"id": callspec.id})
    return case, digest


def header_counts(items: list[pytest.Item], unselected: dict[str, int]) -> list[list[Any]]:
    """Per sweep among the items, [sweep id, psets, cases, psets before
    --psweep-select or None, its own calc dir or None]: how many different psets, and
    how many different values of its other parametrizations (1 without any)."""
    psets: dict[str, set[str]] = {}
    cases: dict[str, set[str]] = {}
    folders: dict[str, str | None] = {}
    for item in items:
        sweep = sweep_of(item)
        if sweep is None:
            continue
        folders[sweep.sweep_id] = sweep.calc_dir
        params = item.callspec.params  # type: ignore[attr-defined]
        psets.setdefault(sweep.sweep_id, set()).add(params["pset"][HASH_KEY])
        case = _case(item.callspec)[1] if len(params) > 1 else ""  # type: ignore[attr-defined]
        cases.setdefault(sweep.sweep_id, set()).add(case)
    return [
        [sweep, len(psets[sweep]), len(cases[sweep]), unselected.get(sweep), folders[sweep]]
        for sweep in psets
    ]


# An xdist worker's header counts ride on its first report to the controller, which
# collects nothing itself and learns only node ids from xdist's collection events.
_HEADER_ATTR = "psweep_header"


def attach_header(report: pytest.TestReport, counts: list[list[Any]]) -> None:
    setattr(report, _HEADER_ATTR, counts)


def take_header(report: pytest.TestReport) -> list[list[Any]] | None:
    counts = getattr(report, _HEADER_ATTR, None)
    if counts is not None:
        delattr(report, _HEADER_ATTR)
    return counts
