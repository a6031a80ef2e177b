"""Hints instead of silence (SPEC §5): what the plugin notices at collection and says.

With ``--psweep`` (without it, ``plugin`` says which sweeps were left out): a
``sweep_*`` function that carries no sweep (a decorator hid it), ``@ps.sweep`` on a
function not named ``sweep_*``, a parameter that sweeps give values of different
kinds, a parameter name in ``-m "pset(...)"`` or ``--psweep-select`` that no sweep
has; and, for a pset that returned no dict, where its function is.
"""

from __future__ import annotations

import inspect
import numbers
import re
import textwrap
import warnings
from typing import Any

import pytest

from .names import SWEEP_ATTR
from .settings import Options, State
from .sweeps import Sweep


def _defined_here(collector: pytest.Module | pytest.Class, func: Any) -> bool:
    """Is func this module's own (not imported from elsewhere, e.g. a helper)?"""
    return getattr(func, "__module__", None) == getattr(collector.obj, "__name__", None)


def misnamed_sweep(collector: pytest.Module | pytest.Class, name: str, func: Any) -> None:
    """``@ps.sweep`` on a function not named ``sweep_*`` would be ignored (or run as a
    test without its psets): a collection error under --psweep."""
    if not inspect.isfunction(func) or not _defined_here(collector, func):
        return
    raise collector.CollectError(
        f"psweep: {collector.nodeid}::{name} has @ps.sweep but its name does not start "
        f"with sweep_, so it would not run as a sweep: rename it sweep_{name}"
    )


def no_sweep(collector: pytest.Module | pytest.Class, name: str, func: Any) -> None:
    """A ``sweep_*`` function without a sweep is a sweep some decorator hid (one that
    does not copy attributes with ``functools.wraps``, or hypothesis's ``@given``
    above ``@ps.sweep``), or a forgotten ``@ps.sweep``: say so, never skip silently."""
    if not inspect.isfunction(func) or not _defined_here(collector, func):
        return
    inner = getattr(getattr(func, "hypothesis", None), "inner_test", None)
    if isinstance(getattr(inner, SWEEP_ATTR, None), Sweep):
        why = (
            "hypothesis's @given is above @ps.sweep; put @ps.sweep outermost (the "
            "function then runs hypothesis's examples for each pset and returns None)"
        )
    else:
        why = (
            "no @ps.sweep(params) on it, or a decorator above @ps.sweep dropped its "
            "attributes (copy them with functools.wraps)"
        )
    collector.warn(
        pytest.PytestCollectionWarning(
            f"psweep: {collector.nodeid}::{name} is named like a sweep but carries no "
            f"sweep, so it is not collected: {why}"
        )
    )


def note_parameters(state: State, sweep_id: str, params: list[dict[str, Any]]) -> None:
    """Remember a sweep's parameter names and the kinds of their values."""
    kinds: dict[str, set[str]] = {}
    for pset in params:
        for key, value in pset.items():
            if isinstance(key, str):  # hash_params names any other key as an error
                kinds.setdefault(key, set()).add(_kind(value))
    for key, found in kinds.items():
        for kind in found:
            state.param_kinds.setdefault(key, {}).setdefault(kind, set()).add(sweep_id)
    state.param_names.update(kinds)


def _kind(value: Any) -> str:
    """What a column makes of a value: numbers of any type are one kind."""
    if value is None or isinstance(value, bool | str):
        return type(value).__name__
    if type(value).__name__ in ("bool", "bool_"):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


_PSET_MARK_NAMES = re.compile(r"\bpset\(([^)]*)\)")


def check_parameters(options: Options, state: State, markexpr: str) -> None:
    """Once all sweeps are collected: warn of a parameter that sweeps give values of
    different kinds, and of a name in ``-m "pset(name=...)"`` (pytest's option) that
    no sweep has; a name in --psweep-select that no sweep has is a usage error."""
    _warn_mixed_kinds(state)
    names = state.param_names
    marked = set()
    for arguments in _PSET_MARK_NAMES.findall(markexpr):
        marked.update(re.findall(r"(\w+)\s*=", arguments))
    if marked - names:
        warnings.warn(
            pytest.PytestWarning(
                f"psweep: -m {markexpr!r}: no sweep has a parameter "
                f"{', '.join(map(repr, sorted(marked - names)))}; the parameters are "
                f"{', '.join(sorted(names))}"
            ),
            stacklevel=1,
        )
    if options.select is None or not state.unselected:
        return
    unknown = sorted(options.select.names - names)
    if unknown:
        raise pytest.UsageError(
            f"psweep: --psweep-select {options.select.text!r}: no sweep has a parameter "
            f"{', '.join(map(repr, unknown))}; the parameters are {', '.join(sorted(names))}"
        )


def _warn_mixed_kinds(state: State) -> None:
    """Two sweeps that give one parameter name values of different kinds (``n`` grid
    points in one, ``"auto"`` in another) share a database column of mixed type."""
    for key, all_kinds in sorted(state.param_kinds.items()):
        # only sweeps that share a database share a column
        folders: dict[str | None, dict[str, set[str]]] = {}
        for kind, found in all_kinds.items():
            for sweep in found:
                info = state.sweeps.get(sweep)
                folder = folders.setdefault(info.calc_dir if info else None, {})
                folder.setdefault(kind, set()).add(sweep)
        for kinds in folders.values():
            _warn_mixed_column(key, kinds)


def _warn_mixed_column(key: str, kinds: dict[str, set[str]]) -> None:
    """Warn if the sweeps of one database give one parameter values of different kinds."""
    sweeps = set().union(*kinds.values())
    if len(kinds) < 2 or len(sweeps) < 2:
        return  # one kind, or one sweep's own choice
    own = ({k for k, found in kinds.items() if sweep in found} for sweep in sweeps)
    if all(len(mine) == len(kinds) for mine in own):
        return  # every sweep mixes the same kinds itself
    said = "; ".join(
        f"{kind} from {', '.join(sorted(found))}" for kind, found in sorted(kinds.items())
    )
    warnings.warn(
        pytest.PytestWarning(
            f"psweep: parameter {key!r} gets values of different kinds from different "
            f"sweeps ({said}): one database column of mixed type. Rename it in one "
            "sweep, or give one a calc dir of its own: @ps.sweep(params, calc_dir=...)"
        ),
        stacklevel=1,
    )


def source_of(function: Any, lines: int = 12) -> str:
    """Where a function is and its first lines, for an error about what it did."""
    try:
        source, start = inspect.getsourcelines(function)
        where = f"{inspect.getsourcefile(function)}:{start}"
    except (OSError, TypeError):
        return f"the function: {getattr(function, '__qualname__', function)}"
    shown = "".join(source[:lines]).rstrip() + ("\n    ..." if len(source) > lines else "")
    return f"the function, {where}:\n{textwrap.indent(shown, '    ')}"
