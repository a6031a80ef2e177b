"""What a pytest session knows of its sweeps: the settings, each sweep function, and
the pset a sweep item runs. Shared by the plugin (every process) and the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .engine import Run

HASH_KEY = "_pset_hash"


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
    done: set[tuple[str, str]] = field(default_factory=set)  # (sweep, hash) of passed rows
    baseline: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # _git_commit, _git_dirty, ...
    # sweep function -> its pytest.params, from collection until parametrize takes them
    pending: dict[Any, list[Any]] = field(default_factory=dict)
    sweeps: dict[str, SweepInfo] = field(default_factory=dict)  # by sweep id


@dataclass(frozen=True)
class SweepInfo:
    """What collection knows of a sweep function, shared by all its items."""

    sweep_id: str  # the _sweep column: "<module node id>::<function>"
    argnames: tuple[str, ...]  # what the function is called with
    code_hash: str
    rtol: float | None
    atol: float | None


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
    returned: list[str] | tuple[str, ...] = ()  # the keys the function returned
    truth: dict[str, Any] = field(default_factory=dict)  # its true book-keeping

    @property
    def sweep_id(self) -> str:
        return self.sweep.sweep_id

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
    --psweep-compare the comparison's verdict, and the pset's id. (A tuple: made
    twice per pset, it must be cheap.)"""

    record: bytes
    outcome: str
    verdict: str | None
    pset_id: str

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
    value = item.callspec.params["pset"]  # type: ignore[attr-defined]
    params = dict(value)
    del params[HASH_KEY]
    return SweepPset(value, params, value[HASH_KEY], sweep)


def sweep_id_of_nodeid(nodeid: str) -> str | None:
    """The sweep of a sweep item's node id (``<module>::<sweep_name>[<pset id>]``);
    None for other node ids.

    Only for the xdist controller, which collects nothing and is told the workers'
    node ids alone (``pytest_xdist_node_collection_finished``): xdist offers no other
    way to learn what they collected before they run. A pset id holds no ``[``
    (``plugin.pset_ids``); tests pin the format for the pytest and xdist in use.
    """
    name_at = nodeid.find("::sweep_")
    if name_at < 0 or not nodeid.endswith("]"):
        return None
    bracket = nodeid.find("[", name_at)
    return nodeid[:bracket] if bracket > 0 else None
