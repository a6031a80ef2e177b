"""Hooks that conftest.py files and other plugins may implement (SPEC §5).

Registered with ``pytest_addhooks``; implement them as functions of these names in a
``conftest.py`` or a plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import pandas as pd
    import pytest

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_psweep_row(row: dict[str, Any], item: pytest.Item) -> None:
    """Add or change columns of a sweep's row before it is stored.

    Runs where the row is made (an xdist worker under ``-n``), after the sweep
    function returned; change ``row`` in place. Values must pickle.

    Example::

        import mysolver

        def pytest_psweep_row(row, item):
            row["solver_version"] = mysolver.__version__
            row["item_name"] = item.name
    """


@hookspec
def pytest_psweep_finish(database: pd.DataFrame, new_rows: pd.DataFrame, calc_dir: Path) -> None:
    """Runs on the controller after the session's rows were written to the database.

    ``database`` is the whole database, ``new_rows`` this session's rows, ``calc_dir``
    the calc dir the rows went to (``<calc_dir>.simulate`` under --psweep-simulate).

    Example::

        def pytest_psweep_finish(database, new_rows, calc_dir):
            database.to_csv(calc_dir / "results.csv")
            failed = new_rows[new_rows["_outcome"] == "failed"]
            print(f"{len(failed)} psets failed this session")
    """
