"""Hooks that conftest.py files and other plugins may implement (SPEC §5)."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_psweep_row(row: dict, item: Any) -> None:
    """Add or change columns of a sweep's row before it is stored.

    Runs where the row is made (an xdist worker under ``-n``), after the sweep
    function returned; change ``row`` in place (e.g. ``row["git_commit"] = ...``).
    """


@hookspec
def pytest_psweep_finish(database: Any, new_rows: Any, calc_dir: Any) -> None:
    """Runs on the controller after the session's rows were written to the database.

    ``database`` is the whole database DataFrame, ``new_rows`` this session's rows,
    ``calc_dir`` the calc dir's ``pathlib.Path``.
    """
