"""The plugin's entry point (pytest11): its options, and what plain pytest hears.

pytest imports this module in every run of an environment where pytest-psweep is
installed, so it imports nothing but pytest and the package's names (the package's
API loads when used, ``__init__``). Without ``--psweep`` it changes nothing: pytest
collects and runs exactly what it would, and one line says which sweep files and
sweeps were left out. With ``--psweep``, ``pytest_configure`` resolves the options
and registers the rest: ``collect`` (sweeps become items), ``runner`` (a pset
becomes a row, in every process that runs items) and, in the one process that owns
the calc dir, the controller's plugins (``controller``).
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from . import hookspecs
from .names import (
    ATOL,
    CALC_DIR,
    DATABASE,
    LOCK_TIMEOUT,
    LOCK_TIMEOUT_ENV,
    MARKER,
    PROGRESS_SECONDS,
    RTOL,
    SIMULATE_SUFFIX,
    SWEEP_ATTR,
    counted,
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("psweep", "parameter sweeps (pytest-psweep)")

    def flag(name: str, help: str) -> None:
        group.addoption(
            f"--{name.replace('_', '-')}", action="store_true", default=None, dest=name, help=help
        )
        parser.addini(name, help, type="bool", default=False)

    flag("psweep", "Collect and run sweep_* functions, one item per pset.")
    group.addoption(
        "--psweep-calc-dir",
        dest="psweep_calc_dir",
        default=None,
        metavar="DIR",
        help=f"Write rows to DIR/{DATABASE} (default: {CALC_DIR}, relative to the rootdir).",
    )
    parser.addini("psweep_calc_dir", "Calc dir of the sweeps' database.", default=CALC_DIR)
    flag(
        "psweep_simulate",
        f"Copy the database to <calc_dir>{SIMULATE_SUFFIX}/ and run there without calling "
        "the sweep functions.",
    )
    flag("psweep_backup", "Copy the calc dir to <calc_dir>_<newest _time_utc> first.")
    flag(
        "psweep_skip_dups",
        "Skip psets that already have a passed row with the same _pset_hash and _sweep.",
    )
    flag(
        "psweep_compare",
        "Regression mode: fail psets whose results differ from their latest passed row "
        "in the baseline (--psweep-baseline; default: this calc dir's database before "
        "the run).",
    )

    def value(name: str, metavar: str, help: str, ini_help: str) -> None:
        group.addoption(
            f"--{name.replace('_', '-')}", dest=name, default=None, metavar=metavar, help=help
        )
        parser.addini(name, ini_help, default="")

    value(
        "psweep_baseline",
        "PATH",
        "The baseline database of --psweep-compare (.pk or .json, or a calc dir), "
        "relative to the rootdir; implies --psweep-compare.",
        "The baseline database of --psweep-compare.",
    )
    value(
        "psweep_select",
        "EXPR",
        'Only psets whose parameters satisfy EXPR, e.g. "omega > 1.5 and n == 32" '
        "(comparisons, and/or/not, in, arithmetic); chosen before items are made.",
        "Only psets whose parameters satisfy this.",
    )
    value(
        "psweep_report",
        "PATH",
        "At the end, write the database as one self-contained HTML page to PATH "
        "(relative to the current folder; needs the report extra).",
        "Write the HTML report here at the end of each session.",
    )
    group.addoption(
        "--psweep-shard",
        dest="psweep_shard",
        default=None,
        metavar="I/N|slurm",
        help="Run only shard I of N (psets with int(_pset_hash, 16) %% N == I), chosen "
        "before items are made; 'slurm': this job array task's. Rows go to "
        "<calc_dir>/shards/ for 'psweep merge'.",
    )
    group.addoption(
        "--psweep-run-id",
        dest="psweep_run_id",
        default=None,
        metavar="ID",
        help="The _run_id of this session's rows (default: a new UUID; under "
        "--psweep-shard=slurm one made from SLURM_ARRAY_JOB_ID, shared by the array's tasks).",
    )
    value(
        "psweep_lock_timeout",
        "SECONDS",
        "Give up waiting for the database's lock after SECONDS (default: "
        f"${LOCK_TIMEOUT_ENV}, else {LOCK_TIMEOUT:g}); the rows stay journaled.",
        "Seconds to wait for the database's lock.",
    )
    parser.addini(
        "psweep_progress_seconds",
        "On a terminal, a line with done/total psets, failures and an ETA at most this "
        "often (0: never).",
        default=str(PROGRESS_SECONDS),
    )
    parser.addini("psweep_rtol", "Relative tolerance of --psweep-compare.", default=str(RTOL))
    parser.addini("psweep_atol", "Absolute tolerance of --psweep-compare.", default=str(ATOL))
    parser.addini(
        "psweep_compare_ignore",
        "Result keys --psweep-compare leaves out in every sweep (e.g. wall-clock times).",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "psweep: a pset of a sweep function (pytest-psweep)")
    config.addinivalue_line(
        "markers", "pset(**params): the parameter values of a sweep item; -m 'pset(a=1)'"
    )
    value = config.getoption("psweep")
    if not (config.getini("psweep") if value is None else value):
        return
    import pickle

    from . import collect, controller, options
    from .runner import SweepRunner
    from .settings import OPTIONS, STATE, State

    config.stash[_ACTIVE] = True
    resolved = options.resolve(config)
    state = State()
    config.stash[OPTIONS] = resolved
    config.stash[STATE] = state
    config.pluginmanager.register(collect, "psweep-collect")
    config.pluginmanager.register(SweepRunner(resolved, state), "psweep-runner")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # what the controller found in the database
        state.done = {tuple(key) for key in workerinput["psweep_done"]}
        state.baseline = pickle.loads(workerinput["psweep_baseline"])
        state.provenance = workerinput["psweep_provenance"]
    else:
        controller.register(config, resolved, state)


# -- without --psweep: what was left out, and nothing else ----------------------------


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A calc dir (it carries ``MARKER``) holds copies of the sweep modules that made
    its rows: never collected, with or without --psweep (under --psweep, ``collect``
    also knows calc dirs made before the marker). A folder merely named like a calc
    dir is collected as pytest would."""
    return True if (collection_path / MARKER).is_file() else None


_ACTIVE = pytest.StashKey[bool]()  # --psweep given
_LEFT_OUT = pytest.StashKey[dict[str, list[str]]]()  # "files"/"sweeps" -> names
# a sweep in a file's text: a decorator such as @ps.sweep(...) or @sweep(...)
_SWEEP_DECORATOR = rb"^[ \t]*@[\w.]*\bsweep\s*\("


def _left_out(config: pytest.Config, kind: str, name: str) -> None:
    empty: dict[str, list[str]] = {"files": [], "sweeps": []}
    config.stash.setdefault(_LEFT_OUT, empty)[kind].append(name)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Without --psweep, a ``sweep_*.py`` file that pytest does not collect and that
    holds a sweep is noted (a helper module so named is not)."""
    if file_path.suffix != ".py" or not file_path.name.startswith("sweep_"):
        return
    config = parent.config
    if config.stash.get(_ACTIVE, False) or parent.session.isinitpath(file_path):
        return
    if any(fnmatch(file_path.name, pattern) for pattern in config.getini("python_files")):
        return  # pytest collects it: its sweeps are noted one by one
    try:
        text = file_path.read_bytes()
    except OSError:
        return
    if re.search(_SWEEP_DECORATOR, text, re.MULTILINE):
        try:
            shown = str(file_path.relative_to(config.rootpath))
        except ValueError:
            shown = str(file_path)
        _left_out(config, "files", shown)


@pytest.hookimpl(trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[Any] | None:
    """Without --psweep, a sweep in a test module is left alone, and noted."""
    if not name.startswith("sweep_") or getattr(obj, SWEEP_ATTR, None) is None:
        return None
    if collector.config.stash.get(_ACTIVE, False):
        return None  # collect.py's
    _left_out(collector.config, "sweeps", f"{collector.nodeid}::{name}")
    return []


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """Without --psweep, one line says what was left out and how to run it."""
    return _left_out_line(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    """An xdist worker hands what it left out to the controller, which collects
    nothing itself (``pytest_testnodedown``)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    left_out = session.config.stash.get(_LEFT_OUT, None)
    if workeroutput is not None and left_out:
        workeroutput["psweep_left_out"] = left_out


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Under xdist, what the first worker that ended left out (all collect alike)."""
    left_out = getattr(node, "workeroutput", {}).get("psweep_left_out")
    if left_out and _LEFT_OUT not in node.config.stash:
        node.config.stash[_LEFT_OUT] = left_out


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Under xdist, the line that says what was left out comes at the end."""
    if config.pluginmanager.has_plugin("dsession"):  # xdist's controller
        for line in _left_out_line(config):
            terminalreporter.write_line(line)


def _left_out_line(config: pytest.Config) -> list[str]:
    left_out = config.stash.get(_LEFT_OUT, None)
    if not left_out or config.stash.get(_ACTIVE, False):
        return []
    if config.option.collectonly and config.get_verbosity() < 0:
        return []  # --co -q: node ids only, fed back to pytest
    parts = []
    for kind, what in (("files", "sweep_*.py file"), ("sweeps", "sweep")):
        names = left_out[kind]
        if names:
            more = f", ... ({len(names) - 3} more)" if len(names) > 3 else ""
            parts.append(f"{counted(len(names), what)} ({', '.join(names[:3])}{more})")
    return [f"psweep: {' and '.join(parts)} left out: run them with pytest --psweep"]
