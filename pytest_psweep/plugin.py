"""pytest hooks: ``sweep_*`` functions become one item per pset; rows go to the database.

A thin layer on the engine, as xdist's ``plugin.py``: options, collection and the
hooks that run a pset, in every process that runs items (serial, or each xdist
worker). A pset becomes a row with ``engine.Run``; the row rides on the test report
as bytes to the one process that owns the calc dir (``controller.Controller``).
Hooks appear in the order pytest calls them.
"""

from __future__ import annotations

import collections
import inspect
import os
import pickle
import re
from collections.abc import Generator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from . import compare, hints, hookspecs, integrations, journal, mounts, shards
from .calcdir import (
    CALC_DIR,
    DATABASE,
    LOCK_TIMEOUT,
    LOCK_TIMEOUT_ENV,
    SIMULATE_SUFFIX,
    CalcDir,
    database_file,
    lock_timeout_seconds,
)
from .controller import Controller, usage_errors
from .engine import Run, code_hash, provenance
from .errors import PsweepError
from .params import SWEEP_ATTR, Sweep, check_params, hash_params, pset_hash, python_scalar
from .progress import PROGRESS_SECONDS
from .selection import Selection
from .sweeps import (
    ATTEMPT_KEY,
    ATTEMPTS,
    CASE_KEY,
    RUNNING,
    SETTINGS,
    ReportedRow,
    RowKey,
    Settings,
    SweepInfo,
    SweepPset,
    attach_header,
    header_counts,
    item_value,
    settings_of,
    sweep_pset,
)

_ERROR_CHARS = 2000
CRASHED = (
    "the process running this pset died before it finished (a crash, a kill, "
    "os._exit, out of memory, a killed xdist worker or session)"
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
    parser.addini(
        "psweep_rtol", "Relative tolerance of --psweep-compare.", default=str(compare.RTOL)
    )
    parser.addini(
        "psweep_atol", "Absolute tolerance of --psweep-compare.", default=str(compare.ATOL)
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "psweep: a pset of a sweep function (pytest-psweep)")
    config.addinivalue_line(
        "markers", "pset(**params): the parameter values of a sweep item; -m 'pset(a=1)'"
    )
    if not _option(config, "psweep"):
        return
    workerinput = getattr(config, "workerinput", None)
    calc_dir = _calc_dir(config)
    if calc_dir.path == config.rootpath or calc_dir.path in config.rootpath.parents:
        raise pytest.UsageError(
            f"psweep: calc dir {calc_dir.path} holds the sweep modules (it is the rootdir "
            "or a folder above it), so the copies it keeps of them would be collected as "
            f"sweeps too; give it a folder of its own, e.g. --psweep-calc-dir={CALC_DIR}"
        )
    simulate = bool(_option(config, "psweep_simulate"))
    backup = bool(_option(config, "psweep_backup"))
    shard, run_id = _shard_and_run_id(config, simulate, backup)
    target = calc_dir.simulate if simulate else calc_dir
    if workerinput is not None:  # what the controller chose: one run, one calc dir
        run_id = workerinput["psweep_run_id"]
        here, target = target.path, CalcDir(Path(workerinput["psweep_calc_dir"]))
        mounts.check_worker(config, here, target.path, workerinput)  # the same study?
    run = Run(str(target.path), run_id)
    settings = Settings(
        calc_dir=calc_dir.path,
        simulate=simulate,
        backup=backup,
        skip_dups=bool(_option(config, "psweep_skip_dups")),
        compare=_compare_path(config, calc_dir),
        rtol=_float_ini(config, "psweep_rtol"),
        atol=_float_ini(config, "psweep_atol"),
        lock_timeout=_lock_timeout(config),
        run=run,
        html=integrations.html_active(config),
        junitxml=integrations.junitxml_active(config),
        report=_report_path(config, shard),
        worker=workerinput is not None,
        select=_selection(config),
        shard=shard,
        chosen_run_id=run_id is not None,
        progress_seconds=_float_ini(config, "psweep_progress_seconds"),
        rootdir=config.rootpath,
    )
    config.stash[SETTINGS] = settings
    config.pluginmanager.register(SweepRunner(settings), "psweep-runner")
    if workerinput is not None:
        settings.done = {tuple(pair) for pair in workerinput["psweep_done"]}
        settings.baseline = pickle.loads(workerinput["psweep_baseline"])
        settings.provenance = workerinput["psweep_provenance"]
    else:
        settings.provenance = provenance(config.rootpath)
        if shard is not None:
            settings.provenance["_shard"] = shard.label
        config.pluginmanager.register(Controller(config, settings), "psweep-controller")
        if settings.html and config.pluginmanager.hasplugin("html"):
            config.pluginmanager.register(integrations.HtmlColumns(), "psweep-html")


def _calc_dir(config: pytest.Config) -> CalcDir:
    """The calc dir, relative to the rootdir (``.`` and ``..`` taken out)."""
    return CalcDir(
        Path(os.path.normpath(config.rootpath / str(_option(config, "psweep_calc_dir"))))
    )


def _report_path(config: pytest.Config, shard: shards.Shard | None) -> Path | None:
    """--psweep-report: where the HTML report goes, relative to the folder pytest was
    started in (as --junitxml); None without it."""
    text = str(_option(config, "psweep_report") or "").strip()
    if not text:
        return None
    if shard is not None:
        raise pytest.UsageError(
            f"psweep: --psweep-report={text}: a shard task writes no database; make the "
            "report after 'psweep merge CALC_DIR' with 'psweep report CALC_DIR -o PATH'"
        )
    return config.invocation_params.dir / text


def _shard_and_run_id(
    config: pytest.Config, simulate: bool, backup: bool
) -> tuple[shards.Shard | None, str | None]:
    """--psweep-shard and --psweep-run-id (None: a new UUID), or a usage error."""
    text = config.getoption("psweep_shard")
    chosen = config.getoption("psweep_run_id")
    with usage_errors():
        run_id = shards.check_run_id(chosen) if chosen is not None else None
        if not text:
            return None, run_id
        shard = shards.parse_shard(text)
    if simulate or backup:
        raise pytest.UsageError(
            f"psweep: --psweep-shard={text} runs one task of many, which never writes the "
            "database: --psweep-simulate and --psweep-backup belong to a whole run; "
            "give them without --psweep-shard"
        )
    if run_id is None and text.strip() == "slurm":
        run_id = shards.slurm_run_id()
    return shard, run_id


def _compare_path(config: pytest.Config, calc_dir: CalcDir) -> Path | None:
    """The baseline database of --psweep-compare, relative to the rootdir; None
    without regression mode. A baseline given turns regression mode on."""
    baseline = str(_option(config, "psweep_baseline") or "").strip()
    if baseline:
        return database_file(config.rootpath / baseline)
    return calc_dir.database if _option(config, "psweep_compare") else None


def _selection(config: pytest.Config) -> Selection | None:
    text = _option(config, "psweep_select")
    if not text or not str(text).strip():
        return None
    with usage_errors():
        return Selection(str(text))


def _lock_timeout(config: pytest.Config) -> float:
    with usage_errors():
        return lock_timeout_seconds(_option(config, "psweep_lock_timeout"))


def _float_ini(config: pytest.Config, name: str) -> float:
    value = config.getini(name)
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"psweep: ini key {name} = {value!r} is not a number") from None


def _option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini key of the same name."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


# -- collection ----------------------------------------------------------------------


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside a calc dir, a simulate copy or a backup.

    They hold copies of sweep modules (``backup_script/``), which would be collected
    twice and clash with the originals.
    """
    calc_dir = _calc_dir(config)
    return True if calc_dir.holds(collection_path) else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``sweep_*.py`` files that pytest's own ``python_files`` would not."""
    if file_path.suffix != ".py" or not file_path.name.startswith("sweep_"):
        return None
    if settings_of(parent.config) is None:
        hints.left_out(parent.config, file_path)
        return None
    if parent.session.isinitpath(file_path) or any(
        fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")
    ):
        return None  # pytest collects it already
    return pytest.Module.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[Any] | None:
    """Check a sweep's params, then let pytest collect it as a test function."""
    settings = settings_of(collector.config)
    if not name.startswith("sweep_"):
        if settings is not None and isinstance(getattr(obj, SWEEP_ATTR, None), Sweep):
            hints.misnamed_sweep(collector, name, obj)
        return None
    sweep = getattr(obj, SWEEP_ATTR, None)
    if not isinstance(sweep, Sweep):
        if settings is not None:
            hints.no_sweep(collector, name, obj)
        return None
    if settings is None:  # plain pytest leaves sweeps alone, and says so
        hints.left_out(collector.config, f"{collector.nodeid}::{name}")
        return []
    psets = _sweep_psets(collector, settings, name, obj, sweep)
    if not psets:
        return []  # --psweep-select chose none of them
    settings.pending[obj] = psets
    obj.__test__ = True  # type: ignore[attr-defined]  # pytest's own mark of a test function whatever its name
    if not any(mark.name == "psweep" for mark in getattr(obj, "pytestmark", ())):
        # on the function, not on each pset: pytest handles one function mark far
        # faster than the same mark on 10k parameters (benchmarks/README.md)
        pytest.mark.psweep(obj)
    return None


def _sweep_psets(
    collector: pytest.Module | pytest.Class,
    settings: Settings,
    name: str,
    func: Any,
    sweep: Sweep,
) -> list[Any]:
    """The sweep's psets as ``pytest.param``s, or a collection error naming the sweep."""
    sweep_id = f"{collector.nodeid}::{name}"
    where = f"sweep {sweep_id}"
    try:
        params = check_params(sweep.params, where)
        hints.note_parameters(settings, sweep_id, params)
        if settings.select is not None or settings.shard is not None:
            settings.unselected[sweep_id] = len(params)
        if settings.select is not None:
            params = [pset for pset in params if settings.select.matches(pset)]
        digests = hash_params(params, where)
        if settings.shard is not None:  # before items exist: a shard pays for its own
            owns = settings.shard.owns
            kept = [i for i, digest in enumerate(digests) if owns(digest)]
            params = [params[i] for i in kept]
            digests = [digests[i] for i in kept]
    except PsweepError as exc:
        raise collector.CollectError(str(exc)) from None
    except Exception as exc:  # the params callable itself failed
        raise collector.CollectError(
            f"{where}: building params raised {type(exc).__name__}: {exc}"
        ) from None
    argnames = tuple(inspect.signature(func).parameters)
    if isinstance(collector, pytest.Class):
        argnames = argnames[1:]  # self: the method is called bound to an instance
    settings.sweeps[sweep_id] = SweepInfo(
        sweep_id,
        argnames,
        code_hash(func),
        sweep.rtol,
        sweep.atol,
        _own_calc_dir(collector, settings, sweep_id, sweep),
    )
    mark = pytest.mark.pset  # looked up once: pytest checks the marker name each time
    # each item gets a dict of its own: its pset and the pset's hash (sweeps.item_value)
    return [
        pytest.param(item_value(pset, digest), id=pset_id, marks=mark(**pset))
        for pset, digest, pset_id in zip(params, digests, pset_ids(params))
    ]


def _own_calc_dir(
    collector: pytest.Collector, settings: Settings, sweep_id: str, sweep: Sweep
) -> str | None:
    """A sweep's own calc dir (``ps.sweep(calc_dir=...)``), relative to the rootdir;
    None for the session's. Under --psweep-skip-dups and --psweep-compare, what it
    has done and its baseline come from its own database, read here (in the process
    that collects: under xdist, the controller knows no sweeps)."""
    if sweep.calc_dir is None:
        return None
    config = collector.config
    calc_dir = CalcDir(Path(os.path.normpath(config.rootpath / sweep.calc_dir)))
    if calc_dir.path == settings.calc_dir:
        return None
    if calc_dir.path == config.rootpath or calc_dir.path in config.rootpath.parents:
        raise collector.CollectError(
            f"sweep {sweep_id}: calc_dir={sweep.calc_dir!r} is {calc_dir.path}, which holds "
            "the sweep modules (the rootdir or above it); give it a folder of its own"
        )
    own_baseline = settings.compare is not None and settings.compare == settings.calc_dir / DATABASE
    if settings.skip_dups or own_baseline:
        try:
            done, baseline = _what_it_has(settings, calc_dir, own_baseline)
        except PsweepError as exc:
            raise collector.CollectError(f"sweep {sweep_id}: {exc}") from None
        if settings.skip_dups:
            settings.done = {key for key in settings.done if key[0] != sweep_id}
            settings.done.update(key for key in done if key[0] == sweep_id)
        if own_baseline:
            for key in [key for key in settings.baseline if key[0] == sweep_id]:
                del settings.baseline[key]
            settings.baseline.update((k, row) for k, row in baseline.items() if k[0] == sweep_id)
    return str(calc_dir.path)


def _what_it_has(
    settings: Settings, calc_dir: CalcDir, baseline: bool
) -> tuple[set[RowKey], dict[RowKey, dict[str, Any]]]:
    """A sweep's own calc dir's done keys and (``baseline``) latest passed rows, read
    once per calc dir however many sweeps share it."""
    known = settings.own_databases.get(calc_dir.path)
    if known is None:
        from .session import CalcSession

        session = CalcSession(calc_dir.path, settings.run.run_id, shard=settings.shard)
        done = session.done() if settings.skip_dups else set()
        rows = session.baseline(calc_dir.database) if baseline else {}
        known = settings.own_databases[calc_dir.path] = (done, rows)
    return known


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    return hints.left_out_line(config) if settings_of(config) is None else []


def pytest_collection_finish(session: pytest.Session) -> None:
    settings = settings_of(session.config)
    if settings is not None and settings.sweeps:
        hints.check_parameters(settings, session.config.option.markexpr or "")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per pset: pytest's own parametrization of the argument ``pset``."""
    settings = settings_of(metafunc.config)
    # popped: pytest keeps what each item needs (its callspec), so 10k params and
    # mark decorators do not stay alive (and walked by every gc) for the session
    values = settings.pending.pop(metafunc.function, None) if settings is not None else None
    if values is None:
        return
    if "pset" not in metafunc.fixturenames:
        pytest.fail(
            f"sweep {metafunc.definition.nodeid}: a sweep function takes the argument "
            "'pset' (or uses a fixture that does)",
            pytrace=False,
        )
    metafunc.parametrize("pset", values)


_SAFE_VALUE = re.compile(r"[\w.+-]{1,40}", re.ASCII)


def pset_ids(params: list[dict[str, Any]]) -> list[str]:
    """Readable, deterministic ids (``a=1-b=77``), unique within the sweep.

    A value that would make a bad id (long, odd characters, containers) shows as a
    short digest of its content, so every xdist worker still computes the same id.
    """
    ids = []
    for pset in params:
        parts = []
        for key, value in pset.items():
            value = python_scalar(value)  # a numpy scalar reads as the number it is
            text = value if isinstance(value, str) else repr(value)
            if not (isinstance(value, (str, int, float, bool)) or value is None) or not (
                _SAFE_VALUE.fullmatch(text)
            ):
                text = "#" + pset_hash({"v": value})[:8]
            parts.append(f"{key}={text}")
        ids.append("-".join(parts) or "empty")
    seen = collections.Counter(ids)
    numbered: collections.Counter[str] = collections.Counter()
    unique = []
    for pset_id in ids:
        if seen[pset_id] > 1:
            numbered[pset_id] += 1
            pset_id = f"{pset_id}-{numbered[pset_id] - 1}"
        unique.append(pset_id)
    return unique


@pytest.fixture
def pset_dir(pset: dict[str, Any]) -> Path:
    """The pset's own folder ``<calc_dir>/<_pset_id>/``, created: like ``tmp_path``, but
    kept, and named in the pset's row (``_pset_id``)."""
    folder = Path(mounts.local(pset["_calc_dir"]), pset["_pset_id"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- running one pset ----------------------------------------------------------------


class SweepRunner:
    """Runs sweep items in every process that runs tests (serial, or an xdist worker).

    Registered only under ``--psweep``: without it, pytest's own tests pay nothing.
    Each hook returns at once for an item that is not a sweep's.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run = settings.run
        self.row_hook: bool | None = None  # does any conftest implement pytest_psweep_row?
        self.header: list[list[Any]] | None = None  # an xdist worker's, until sent
        self.own_runs: dict[str, Run] = {}  # by the calc dir of sweeps that have one

    def running(self, item: pytest.Item) -> SweepPset | None:
        """A sweep item's pset with its book-keeping set, once per run of the item;
        None for other items.

        The function and every fixture that requests ``pset`` get this same dict
        (a parameter shared by stacked parametrizations, given back its parameters
        at each teardown).
        """
        pset = item.stash.get(RUNNING, None)
        if pset is None:
            pset = sweep_pset(item)
            if pset is None:
                return None
            pset.truth = self.run_of(pset.sweep).bookkeep(pset.value, pset.digest)
            # each run of the item (pytest-rerunfailures' reruns) is an attempt
            pset.truth[ATTEMPT_KEY] = item.stash.get(ATTEMPTS, 0) + 1
            item.stash[ATTEMPTS] = pset.truth[ATTEMPT_KEY]
            item.stash[RUNNING] = pset
        return pset

    def run_of(self, sweep: SweepInfo) -> Run:
        """The session's run, or for a sweep with a calc dir of its own a run with the
        same id whose rows name that calc dir (``_calc_dir``, ``pset_dir``)."""
        if sweep.calc_dir is None:
            return self.run
        run = self.own_runs.get(sweep.calc_dir)
        if run is None:
            calc_dir = CalcDir(Path(sweep.calc_dir))
            target = calc_dir.simulate if self.settings.simulate else calc_dir
            run = self.own_runs[sweep.calc_dir] = Run(str(target.path), self.run.run_id)
        return run

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """An xdist worker counts the psets it collected for the controller's header
        (the controller collects nothing), sent with its first report."""
        if self.settings.worker and not session.config.option.collectonly:
            self.header = header_counts(session.items, self.settings.unselected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Before any fixture: prepare the pset's row, or skip a pset that is done
        (--psweep-skip-dups; a skipped setup makes no row, teardown restores the pset)."""
        pset = self.running(item)
        if pset is None:
            return
        if pset.clash is not None:
            pytest.fail(pset.clash, pytrace=False)
        if self.settings.skip_dups and pset.key in self.settings.done:
            pytest.skip("already in database")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Call a sweep function and merge its returned dict into the row (no return
        warning)."""
        __tracebackhide__ = True  # a failed pset shows the user's code, not ours
        pset = self.running(pyfuncitem)
        if pset is None:
            return None
        if self.settings.simulate:
            return True
        funcargs = pyfuncitem.funcargs
        function = pyfuncitem.obj
        kwargs = {name: funcargs[name] for name in pset.sweep.argnames}
        try:
            pset.returned = self.run.call(
                lambda: function(**kwargs), pset.value, pset.truth, pyfuncitem.nodeid
            )
        except PsweepError as exc:  # what it returned: show the user's function
            exc.add_note(hints.source_of(function))
            raise
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the finished row (pickled, so any value crosses to an xdist
        controller), and, once its setup passed, the pset's "started" record: a pset
        whose process dies before its row arrives gets a ``crashed`` row from it."""
        report = yield
        if self.header is not None:
            attach_header(report, self.header)
            self.header = None
        when = call.when
        if when == "call" or (when == "setup" and report.failed):
            pset = self.running(item)
            if pset is not None:
                self.attach_row(item, pset, call, report)
        elif when == "setup" and report.passed:
            pset = self.running(item)
            if pset is not None:
                self.attach_started(pset, report)
        elif when == "teardown":
            pset = item.stash.get(RUNNING, None)
            if pset is not None:
                # the row has left with its report and teardown is over: the pset goes
                # back to its parameters, so 100k items do not keep 100k rows in memory
                del item.stash[RUNNING]
                pset.restore()
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """An attempt that pytest-rerunfailures runs again comes back as ``rerun``: its
        row says so. Re-encoded here, in the process that ran the pset (a controller
        may not import the classes of its values), before any other plugin sees it."""
        if str(report.outcome) == "rerun":  # not one of pytest's own outcomes
            carried = ReportedRow.take(report)
            if carried is not None and carried.outcome != "started":
                record = journal.with_outcome(carried.record, "rerun")
                carried = carried._replace(record=record, outcome="rerun")
            if carried is not None:
                carried.attach(report)
        return (yield)

    def row(self, pset: SweepPset, outcome: str, error: str | None) -> dict[str, Any]:
        """A copy of the pset's row as it stands, with the session's columns."""
        row = self.run.finish(dict(pset.value), pset.truth)
        for name, value in pset.case.items():  # what the function returned comes first
            row.setdefault(name, value)
        if pset.case_hash:
            row[CASE_KEY] = pset.case_hash
        row["_sweep"] = pset.sweep.sweep_id
        row["_outcome"] = outcome
        row["_error"] = error
        row["_code_hash"] = pset.sweep.code_hash
        row.update(self.settings.provenance)
        return row

    def attach_started(self, pset: SweepPset, report: pytest.TestReport) -> None:
        row = self.row(pset, "crashed", CRASHED)
        record, _ = journal.encode_row_keeping(row, journal.STARTED)
        ReportedRow(record, "started", None, row["_pset_id"], calc_dir=pset.sweep.calc_dir).attach(
            report
        )

    def attach_row(
        self,
        item: pytest.Item,
        pset: SweepPset,
        call: pytest.CallInfo[None],
        report: pytest.TestReport,
    ) -> None:
        settings = self.settings
        outcome, error = _outcome(call, report)
        row = self.row(pset, outcome, error)  # a copy travels
        if call.when == "call":
            row.update(integrations.benchmark_columns(item))
        verdict = None
        if self.row_hook is None:  # known once items run: conftests load at collection
            self.row_hook = bool(item.config.hook.pytest_psweep_row.get_hookimpls())
        if self.row_hook:
            item.ihook.pytest_psweep_row(row=row, item=item)
        diffs = None
        if settings.compare is not None and outcome == "passed" and not settings.simulate:
            verdict, message, diffs = _compare_row(settings, pset, row)
            if message:
                row["_outcome"] = outcome = "failed"
                row["_error"] = f"compare: {message.splitlines()[0]}"
                report.outcome = "failed"
                report.longrepr = f"{item.nodeid}: {message}"
        record, problem = journal.encode_row_keeping(row)
        if problem is not None:  # fail this pset only; the rest of its row is kept
            outcome = "failed"
            record, _ = journal.encode_row_keeping(
                {**row, "_outcome": outcome, "_error": f"PsweepError: {problem}"}
            )
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: {problem}"
        ReportedRow(record, outcome, verdict, row["_pset_id"], diffs, pset.sweep.calc_dir).attach(
            report
        )
        if settings.html:
            integrations.attach_html(report, pset.params, row, pset.returned)
        if settings.junitxml:
            integrations.attach_properties(item, pset.params, row, pset.returned)


def _compare_row(
    settings: Settings, pset: SweepPset, row: dict[str, Any]
) -> tuple[str, str | None, list[list[Any]] | None]:
    """("new" | "same" | "differs", the failure message or None, the differences
    as [sweep, key, abs diff, rel diff] in builtin types, or None).

    Compared: what the function returned. Not compared: the rest of the row
    (parameters, other parametrizations, what row hooks and other plugins add)."""
    baseline = settings.baseline.get(pset.key)
    if baseline is None:
        return "new", None, None
    found = compare.differences(
        baseline,
        row,
        keys=pset.returned,
        ignore=set(row).difference(pset.returned),
        rtol=settings.rtol if pset.sweep.rtol is None else pset.sweep.rtol,
        atol=settings.atol if pset.sweep.atol is None else pset.sweep.atol,
    )
    if not found:
        return "same", None, None
    keys = ", ".join(d.key for d in found)
    message = (
        f"results differ from baseline {settings.compare} "
        f"(row {baseline.get('_pset_id')}) in {keys}\n{compare.diff_table(found)}"
    )
    diffs = [[pset.sweep_id, d.key, _number(d.abs_diff), _number(d.rel_diff)] for d in found]
    return "differs", message, diffs


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _outcome(call: pytest.CallInfo[None], report: pytest.TestReport) -> tuple[str, str | None]:
    """The row's ``_outcome`` and ``_error``: did the pset's function succeed?"""
    excinfo = call.excinfo
    error = None
    if excinfo is not None and not isinstance(excinfo.value, pytest.skip.Exception):
        error = f"{excinfo.typename}: {excinfo.value}"[:_ERROR_CHARS]
    if hasattr(report, "wasxfail"):  # xfail: the function's own success decides
        return ("failed" if error else "passed"), error
    if report.failed and error is None:
        error = str(report.longrepr)[:_ERROR_CHARS]
    return report.outcome, error
