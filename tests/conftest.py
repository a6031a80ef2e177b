from __future__ import annotations

import compileall
import importlib
import os
from pathlib import Path

import numpy  # noqa: F401  (imported before pytester snapshots sys.modules)
import pandas  # noqa: F401
import pytest

import pytest_psweep as ps

# The pytest sessions the tests start leave out the plugins installed for this suite
# and for tests/test_interop.py: pytest-randomly would shuffle their psets, and each
# of the others costs CPU in every pytest process (together 0.06 s of an empty
# session's 0.33; the suite starts some 700). A test that wants one passes
# ``-p <name>``; a module marked ``all_plugins`` (plugin interop) gets them all but
# randomly.
INNER_ADDOPTS = (
    "-p no:randomly -p no:hypothesispytest -p no:html -p no:metadata -p no:benchmark "
    "-p no:rerunfailures -p no:repeat -p no:timeout"
)
ALL_PLUGINS_ADDOPTS = "-p no:randomly -p no:hypothesispytest"


@pytest.fixture(scope="session", autouse=True)
def _inner_plugins():
    """INNER_ADDOPTS from the start, for the studies module fixtures run before any
    test's own fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTEST_ADDOPTS", INNER_ADDOPTS)
        yield


@pytest.fixture(autouse=True)
def _in_order(request, monkeypatch):
    """PYTEST_ADDOPTS of every pytest session a test starts: INNER_ADDOPTS, or
    ALL_PLUGINS_ADDOPTS in a module marked ``all_plugins``."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS: set it after
    every = request.node.get_closest_marker("all_plugins") is not None
    monkeypatch.setenv("PYTEST_ADDOPTS", ALL_PLUGINS_ADDOPTS if every else INNER_ADDOPTS)


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


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package's modules once, on the controller, before any test starts a
    process: with PYTHONDONTWRITEBYTECODE set (as on some CI machines) nothing else
    writes them, and each of the 1200 Python processes the suite starts would compile
    what it imports anew (0.035 CPU-s each, 40 of the suite's 500)."""
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(Path(ps.__file__).parent, quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the README's command): one worker more than the CPUs this process
    may use. A third of the suite's time is waiting (SLURM jobs, Chromium, sessions
    whose psets sleep until a test lets them go), which a worker per CPU leaves idle;
    the sessions the tests start are CPU work the extra worker brings in meanwhile."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return (len(usable) if usable else os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first, each part in its own order: xdist's loadgroup hands
    out the groups (largest first), then single tests in this order, so a long test
    never starts when the other worker is almost done (the suite's tail)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    if getattr(config.option, "loadgroup", False):  # an xdist worker under loadgroup
        for item in items:
            keep_in_group(item)


def xdist_group(item: pytest.Item) -> str | None:
    """The name xdist's loadgroup gives the item's ``xdist_group`` marks, if any."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "_".join(sorted(names)) if names else None


def keep_in_group(item: pytest.Item) -> None:
    """The ``@<group>`` suffix xdist's loadgroup schedules by, where xdist could not
    add it: xdist 3.8 sets ``item._nodeid``, which pytest 9.2 no longer reads (its
    node ids are structured), so each test of a group went to any worker and each
    worker built the group's module fixtures again (the examples' studies three
    times under ``-n auto``; pytest-dev/pytest-xdist#1386)."""
    group = xdist_group(item)
    if group is None or item.nodeid.endswith(f"@{group}"):
        return  # no group, or xdist's own suffix took (pytest before 9.2)
    # pytest >= 9.2: ``nodeid`` is the string of ``item._id``, a ``NodeId``; a later
    # pytest may move it: the groups are then lost (slower, not wrong), and
    # test_architecture's group test says so
    try:
        node_id = importlib.import_module("_pytest.nodeid").NodeId
    except (ImportError, AttributeError):
        return
    object.__setattr__(item, "_id", node_id.parse(f"{item.nodeid}@{group}"))
