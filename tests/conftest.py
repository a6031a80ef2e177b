from __future__ import annotations

import numpy  # noqa: F401  (imported before pytester snapshots sys.modules)
import pandas  # noqa: F401
import pytest

import pytest_psweep as ps

# The pytest sessions the tests start: pytest-randomly, installed for the tests of
# working with it, would shuffle their psets; hypothesis's plugin, installed for this
# suite's own property tests, costs 0.15 s of CPU in every pytest process (a quarter
# of an empty session's; the suite starts hundreds). The tests that want one pass
# ``-p randomly`` or ``-p hypothesispytest``.
INNER_ADDOPTS = "-p no:randomly -p no:hypothesispytest"


@pytest.fixture(autouse=True)
def _in_order(request, monkeypatch):
    """PYTEST_ADDOPTS of every pytest session a test starts: INNER_ADDOPTS."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS: set it after
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_ADDOPTS)


@pytest.fixture(params=[[], ["-n", "2"]], ids=["serial", "xdist"])
def workers(request):
    """Command-line arguments of a pytester run: serial, or two xdist workers."""
    return request.param


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh folder: ps.run's default calc dir lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def read_db(pytester):
    """Read the database a pytester run wrote (default calc dir)."""

    def read(calc_dir: str = "calc"):
        return ps.df_read(pytester.path / calc_dir / "results.pk")

    return read


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first, each part in its own order: xdist's loadgroup hands
    out the groups (largest first), then single tests in this order, so a long test
    never starts when the other worker is almost done (the suite's tail)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
