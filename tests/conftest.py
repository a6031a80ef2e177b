from __future__ import annotations

import numpy  # noqa: F401  (imported before pytester snapshots sys.modules)
import pandas  # noqa: F401
import pytest

import pytest_psweep as ps


@pytest.fixture(autouse=True)
def _in_order(request, monkeypatch):
    """pytest-randomly, installed for the tests of working with it, would shuffle the
    psets of every pytester run; the tests that want it pass ``-p randomly``."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS: set it after
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")


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
