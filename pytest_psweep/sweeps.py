"""What a pytest session knows of its sweeps: each sweep function, and the pset a
sweep item runs. Shared by collection, the runner (every process) and the controller.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from .errors import PsweepError
from .names import HASH_KEY, REPEAT_KEY, SWEEP_ATTR, RowKey
from .params import BOOKKEEPING, pset_hash
from .settings import State, options_of, state_of
from .wire import SweepCount

_REPEAT_FIXTURE = "__pytest_repeat_step_number"  # pytest-repeat's parametrized fixture


@dataclass(frozen=True)
class SweepInfo:
    """What collection knows of a sweep function, shared by all its items."""

    sweep_id: str  # the _sweep column: "<module node id>::<function>"
    module: str  # its module's node id (the path relative to the rootdir)
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


RUNNING = pytest.StashKey[SweepPset]()
ATTEMPTS = pytest.StashKey[int]()  # how often an item started (reruns)


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
    if not isinstance(value, dict) or HASH_KEY not in value or options_of(item.config) is None:
        return None
    assert isinstance(item, pytest.Function) and item.parent is not None
    # None for a test of its own that has an argument named pset
    return state_of(item.config).sweeps.get(f"{item.parent.nodeid}::{item.originalname}")


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


def header_counts(items: list[pytest.Item], state: State) -> list[SweepCount]:
    """Per sweep among the items: how many different psets, and how many different
    values of its other parametrizations (1 without any); a sweep whose psets
    --psweep-select or --psweep-shard all left out, with 0 psets."""
    psets: dict[str, set[str]] = {}
    cases: dict[str, set[str]] = {}
    for item in items:
        sweep = sweep_of(item)
        if sweep is None:
            continue
        params = item.callspec.params  # type: ignore[attr-defined]
        psets.setdefault(sweep.sweep_id, set()).add(params["pset"][HASH_KEY])
        case = _case(item.callspec)[1] if len(params) > 1 else ""  # type: ignore[attr-defined]
        cases.setdefault(sweep.sweep_id, set()).add(case)
    for sweep_id in state.unselected:
        psets.setdefault(sweep_id, set())
    return [
        SweepCount(
            sweep_id,
            state.sweeps[sweep_id].module,
            len(psets[sweep_id]),
            len(cases.get(sweep_id, ())) or 1,
            state.unselected.get(sweep_id),
            state.sweeps[sweep_id].calc_dir,
        )
        for sweep_id in psets
        if sweep_id in state.sweeps
    ]


class Sweep:
    """What ``@ps.sweep`` attaches to a function: its params (or a callable making them)."""

    def __init__(
        self,
        params: Any,
        rtol: float | None,
        atol: float | None,
        calc_dir: str | None = None,
        compare: dict[str, Any] | None = None,
    ) -> None:
        self.params = params
        self.rtol = rtol
        self.atol = atol
        self.calc_dir = calc_dir
        self.compare = compare  # per result: tolerances, or None (not compared)


F = TypeVar("F", bound=Callable[..., Any])


def sweep(
    params: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    calc_dir: str | os.PathLike[str] | None = None,
    compare: dict[str, Any] | None = None,
) -> Callable[[F], F]:
    """Decorate a ``sweep_*`` function with its params: one pytest item per pset.

    ``params`` is a list of psets or a callable returning one; it is checked when
    pytest collects the sweep. ``rtol``/``atol`` are for ``--psweep-compare``;
    ``compare`` gives single results their own, or leaves them out: ``{"wall": None,
    "err": {"rel": 1e-6, "abs": 1e-12}}``.
    ``calc_dir`` (relative to the rootdir) gives the sweep a database of its own
    instead of the session's (``--psweep-calc-dir``), e.g. to keep apart studies
    that use one parameter name with different meanings.
    """
    folder = None if calc_dir is None else os.fspath(calc_dir)
    if compare is not None:
        from .tolerances import tolerances

        tolerances(compare)  # a wrong entry is an error here, naming its key

    def mark(func: F) -> F:
        setattr(func, SWEEP_ATTR, Sweep(params, rtol, atol, folder, compare))
        return func

    return mark
