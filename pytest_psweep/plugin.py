"""pytest hooks: ``sweep_*`` functions become one item per pset; rows go to the database.

A thin layer on the engine. Every process (the controller and each xdist worker)
collects the same items and turns a pset into a row with ``engine.Run``; the row
rides on the test report as bytes; only the controller journals rows and, through
its ``WriterProcess``, writes the calc dir (``Controller``). Hooks appear in the order
pytest calls them.
"""

from __future__ import annotations

import collections
import inspect
import pickle
import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from . import compare, engine, hookspecs
from .database import CALC_DIR, DATABASE, WriterProcess
from .engine import SIMULATE_SUFFIX, Recorder, Run, prepare_calc_dir, provenance
from .errors import PsweepError
from .params import SWEEP_ATTR, Sweep, check_params, pset_hash

OUTCOMES = ("passed", "failed", "skipped")
_ERROR_CHARS = 2000


@dataclass
class Settings:
    """The session's psweep options, resolved from command line and ini."""

    calc_dir: Path  # as configured, absolute
    target: Path  # where this session's rows go (``<calc_dir>.simulate`` when simulating)
    simulate: bool
    backup: bool
    skip_dups: bool
    compare: Path | None  # baseline database of --psweep-compare
    rtol: float
    atol: float
    run: Run
    done: set[tuple[str, str]] = field(default_factory=set)  # (sweep, hash) of passed rows
    baseline: dict = field(default_factory=dict)  # (sweep, hash) -> latest passed row
    provenance: dict = field(default_factory=dict)  # _git_commit, _git_dirty, _versions
    params: dict = field(default_factory=dict)  # sweep function -> its pytest.params
    sweeps: dict = field(default_factory=dict)  # sweep id "<module>::<function>" -> SweepInfo


@dataclass(frozen=True)
class SweepInfo:
    """What collection knows of a sweep function, shared by all its items."""

    sweep_id: str  # the _sweep column: "<module>::<function>"
    params: list[dict]  # as collected; each item's function gets a copy of its pset
    digests: list[str]
    # the index of an item's pset, by the identity of the dict pytest hands the item:
    # pytest keeps the parameter objects it was given, and all of them are alive at
    # once. (callspec.indices cannot tell: with a further parametrize, pytest 9
    # numbers the combinations, not the psets.)
    index_of: dict[int, int]
    argnames: tuple[str, ...]
    code_hash: str
    rtol: float | None
    atol: float | None


@dataclass(slots=True)
class SweepPset:
    """A sweep item's pset: the dict its function and fixtures get (book-keeping set
    in place while the item runs, taken back after teardown), its parameters as
    collected, their hash, its sweep and the keys its function returned.

    Made when needed and kept on the item only while it runs: each object that 100k
    items keep alive is walked by every one of pytest's garbage collections, and a
    plain dict of numbers and strings is not tracked by the collector at all.
    """

    value: dict
    params: dict
    digest: str
    sweep: SweepInfo
    returned: list[str] | tuple = ()  # the keys the function returned

    @property
    def sweep_id(self) -> str:
        return self.sweep.sweep_id


SETTINGS = pytest.StashKey[Settings]()
RUNNING = pytest.StashKey[SweepPset]()


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
    group.addoption(
        "--psweep-compare",
        dest="psweep_compare",
        nargs="?",
        const="",
        default=None,
        metavar="DB",
        help="Fail psets whose results differ from their latest passed row in DB "
        "(default: this calc dir's database before the run).",
    )
    parser.addini(
        "psweep_compare",
        "Compare with a baseline database: a path, or 'true' for the calc dir's.",
        default="",
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
    calc_dir = config.rootpath / str(_option(config, "psweep_calc_dir"))
    simulate = bool(_option(config, "psweep_simulate"))
    target = calc_dir.with_name(calc_dir.name + SIMULATE_SUFFIX) if simulate else calc_dir
    run = Run(str(target), workerinput["psweep_run_id"] if workerinput else None)
    settings = Settings(
        calc_dir=calc_dir,
        target=target,
        simulate=simulate,
        backup=bool(_option(config, "psweep_backup")),
        skip_dups=bool(_option(config, "psweep_skip_dups")),
        compare=_compare_path(config, calc_dir),
        rtol=_float_ini(config, "psweep_rtol"),
        atol=_float_ini(config, "psweep_atol"),
        run=run,
    )
    config.stash[SETTINGS] = settings
    config.pluginmanager.register(SweepRunner(settings), "psweep-runner")
    if workerinput is not None:
        settings.done = {tuple(pair) for pair in workerinput["psweep_done"]}
        settings.baseline = pickle.loads(workerinput["psweep_baseline"])
        settings.provenance = workerinput["psweep_provenance"]
    else:
        settings.provenance = provenance(config.rootpath)
        config.pluginmanager.register(Controller(config, settings), "psweep-controller")


def _compare_path(config: pytest.Config, calc_dir: Path) -> Path | None:
    """The baseline database of --psweep-compare[=DB], relative to the rootdir."""
    value = config.getoption("psweep_compare")
    if value is None:
        value = config.getini("psweep_compare").strip()
        if value.lower() in ("", "false", "0", "no"):
            return None
        if value.lower() in ("true", "1", "yes"):
            value = ""
    path = config.rootpath / value if value else calc_dir / DATABASE
    return path / DATABASE if path.is_dir() else path


def _float_ini(config: pytest.Config, name: str) -> float:
    value = config.getini(name)
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"psweep: ini key {name} = {value!r} is not a number") from None


def _xdist_active(config: pytest.Config) -> bool:
    """Does this process control xdist workers? (``dist`` is missing under -p no:xdist)"""
    return getattr(config.option, "dist", "no") != "no" or bool(
        getattr(config.option, "numprocesses", None)
    )


def _option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini key of the same name."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


def _settings(config: pytest.Config) -> Settings | None:
    return config.stash.get(SETTINGS, None)


# -- collection ----------------------------------------------------------------------


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside a calc dir, a simulate copy or a backup.

    They hold copies of sweep modules (``backup_script/``), which would be collected
    twice and clash with the originals.
    """
    if (collection_path / DATABASE).is_file():
        return True  # any calc dir, e.g. a baseline's or another study's
    calc_dir = config.rootpath / str(_option(config, "psweep_calc_dir"))
    if collection_path.parent != calc_dir.parent:
        return None
    name = collection_path.name
    if name in (calc_dir.name, calc_dir.name + SIMULATE_SUFFIX) or re.fullmatch(
        re.escape(calc_dir.name) + r"_\d{4}-\d\d-\d\dT.*", name
    ):
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``sweep_*.py`` files that pytest's own ``python_files`` would not."""
    if _settings(parent.config) is None:
        return None
    if file_path.suffix != ".py" or not file_path.name.startswith("sweep_"):
        return None
    if parent.session.isinitpath(file_path) or any(
        fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")
    ):
        return None  # pytest collects it already
    return pytest.Module.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> list | None:
    """Check a sweep's params, then let pytest collect it as a test function."""
    sweep = getattr(obj, SWEEP_ATTR, None)
    if not isinstance(sweep, Sweep) or not name.startswith("sweep_"):
        return None
    settings = _settings(collector.config)
    if settings is None:
        return []  # plain pytest leaves sweeps alone
    settings.params[obj] = _sweep_psets(collector, name, obj, sweep)
    obj.__test__ = True  # pytest's own mark of a test function whatever its name
    if not any(mark.name == "psweep" for mark in getattr(obj, "pytestmark", ())):
        # on the function, not on each pset: pytest handles one function mark far
        # faster than the same mark on 10k parameters (benchmarks/README.md)
        pytest.mark.psweep(obj)
    return None


def _sweep_psets(collector: pytest.Collector, name: str, func: Any, sweep: Sweep) -> list:
    """The sweep's psets as ``pytest.param``s, or a collection error naming the sweep."""
    sweep_id = f"{collector.nodeid}::{name}"
    where = f"sweep {sweep_id}"
    try:
        params = check_params(sweep.params, where)
        digests = [pset_hash(pset) for pset in params]
    except PsweepError as exc:
        raise collector.CollectError(str(exc)) from None
    except Exception as exc:  # the params callable itself failed
        raise collector.CollectError(
            f"{where}: building params raised {type(exc).__name__}: {exc}"
        ) from None
    argnames = tuple(inspect.signature(func).parameters)
    if isinstance(collector, pytest.Class):
        argnames = argnames[1:]  # self: the method is called bound to an instance
    values = [dict(pset) for pset in params]  # what the items get, one dict per pset
    settings = _settings(collector.config)
    settings.sweeps[sweep_id] = SweepInfo(
        sweep_id,
        params,
        digests,
        {id(value): index for index, value in enumerate(values)},
        argnames,
        engine.code_hash(func),
        sweep.rtol,
        sweep.atol,
    )
    mark = pytest.mark.pset  # looked up once: pytest checks the marker name each time
    return [
        pytest.param(value, id=pset_id, marks=mark(**pset))
        for value, pset, pset_id in zip(values, params, pset_ids(params))
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per pset: pytest's own parametrization of the argument ``pset``."""
    settings = _settings(metafunc.config)
    # popped: pytest keeps what each item needs (its callspec), so 10k params and
    # mark decorators do not stay alive (and walked by every gc) for the session
    values = settings.params.pop(metafunc.function, None) if settings is not None else None
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


def pset_ids(params: list[dict]) -> list[str]:
    """Readable, deterministic ids (``a=1-b=77``), unique within the sweep.

    A value that would make a bad id (long, odd characters, containers) shows as a
    short digest of its content, so every xdist worker still computes the same id.
    """
    ids = []
    for pset in params:
        parts = []
        for key, value in pset.items():
            text = value if isinstance(value, str) else repr(value)
            if not (isinstance(value, (str, int, float, bool)) or value is None) or not (
                _SAFE_VALUE.fullmatch(text)
            ):
                text = "#" + pset_hash({"v": value})[:8]
            parts.append(f"{key}={text}")
        ids.append("-".join(parts) or "empty")
    seen = collections.Counter(ids)
    numbered: collections.Counter = collections.Counter()
    unique = []
    for pset_id in ids:
        if seen[pset_id] > 1:
            numbered[pset_id] += 1
            pset_id = f"{pset_id}-{numbered[pset_id] - 1}"
        unique.append(pset_id)
    return unique


# -- running one pset ----------------------------------------------------------------


def _sweep_of(item: pytest.Item) -> tuple[SweepInfo, int] | None:
    """A sweep item's sweep and the index of its pset; None for other items."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "pset" not in callspec.params:
        return None
    settings = _settings(item.config)
    sweep = settings.sweeps.get(f"{item.parent.nodeid}::{item.originalname}") if settings else None
    if sweep is None:
        return None  # a test of its own with an argument named pset
    index = sweep.index_of.get(id(callspec.params["pset"]))
    return None if index is None else (sweep, index)


def _sweep_pset(item: pytest.Item) -> SweepPset | None:
    """A new view of a sweep item's pset; None for other items."""
    found = _sweep_of(item)
    if found is None:
        return None
    sweep, index = found
    return SweepPset(item.callspec.params["pset"], sweep.params[index], sweep.digests[index], sweep)


class SweepRunner:
    """Runs sweep items in every process that runs tests (serial, or an xdist worker).

    Registered only under ``--psweep``: without it, pytest's own tests pay nothing.
    Each hook returns at once for an item that is not a sweep's.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run = settings.run
        self.row_hook: bool | None = None  # does any conftest implement pytest_psweep_row?

    def running(self, item: pytest.Item) -> SweepPset | None:
        """A sweep item's pset with its book-keeping set, once per run of the item;
        None for other items.

        The function and every fixture that requests ``pset`` get this same dict
        (a parameter shared by stacked parametrizations, given back its parameters
        at each teardown).
        """
        pset = item.stash.get(RUNNING, None)
        if pset is None:
            pset = _sweep_pset(item)
            if pset is None:
                return None
            self.run.bookkeep(pset.value, pset.digest)
            item.stash[RUNNING] = pset
        return pset

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Before any fixture: prepare the pset's row, or skip a pset that is done
        (--psweep-skip-dups; a skipped setup makes no row, teardown restores the pset)."""
        pset = self.running(item)
        if (
            pset is not None
            and self.settings.skip_dups
            and (pset.sweep_id, pset.digest) in self.settings.done
        ):
            pytest.skip("already in database")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Call a sweep function and merge its returned dict into the row (no return
        warning)."""
        pset = self.running(pyfuncitem)
        if pset is None:
            return None
        if self.settings.simulate:
            return True
        funcargs = pyfuncitem.funcargs
        function = pyfuncitem.obj
        kwargs = {name: funcargs[name] for name in pset.sweep.argnames}
        pset.returned = self.run.call(lambda: function(**kwargs), pset.value, pyfuncitem.nodeid)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo
    ) -> pytest.TestReport:
        """Attach the finished row (pickled, so any value crosses to an xdist controller)."""
        report = yield
        when = call.when
        if when == "call" or (when == "setup" and report.failed):
            pset = self.running(item)
            if pset is not None:
                self.attach_row(item, pset, call, report)
        elif when == "teardown":
            pset = item.stash.get(RUNNING, None)
            if pset is not None:
                # the row has left with its report and teardown is over: the pset goes
                # back to its parameters, so 100k items do not keep 100k rows in memory
                del item.stash[RUNNING]
                pset.value.clear()
                pset.value.update(pset.params)
        return report

    def attach_row(
        self, item: pytest.Item, pset: SweepPset, call: pytest.CallInfo, report: pytest.TestReport
    ) -> None:
        settings = self.settings
        row = self.run.finish(dict(pset.value))  # a copy travels
        outcome, error = _outcome(call, report)
        row["_sweep"] = pset.sweep.sweep_id
        row["_outcome"] = outcome
        row["_error"] = error
        row["_code_hash"] = pset.sweep.code_hash
        row.update(settings.provenance)
        before_hook = set(row) if settings.compare is not None else None
        if self.row_hook is None:  # known once items run: conftests load at collection
            self.row_hook = bool(item.config.hook.pytest_psweep_row.get_hookimpls())
        if self.row_hook:
            item.ihook.pytest_psweep_row(row=row, item=item)
        if settings.compare is not None and outcome == "passed" and not settings.simulate:
            hook_keys = set(row) - before_hook
            verdict, message = _compare_row(settings, pset, row, item, hook_keys)
            report.psweep_compare = verdict
            if message:
                row["_outcome"] = outcome = "failed"
                row["_error"] = f"compare: {message.splitlines()[0]}"
                report.outcome = "failed"
                report.longrepr = f"{item.nodeid}: {message}"
        record, problem = engine.encode_row(row)
        if problem is not None:  # fail this pset only; the rest of its row is kept
            outcome = "failed"
            record, _ = engine.encode_row(
                {**row, "_outcome": outcome, "_error": f"PsweepError: {problem}"}
            )
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: {problem}"
        report.psweep_row = record
        report.psweep_outcome = outcome


def _compare_row(
    settings: Settings, pset: SweepPset, row: dict, item: pytest.Item, hook_keys: set
) -> tuple[str, str | None]:
    """("new" | "same" | "differs", the failure message or None)."""
    baseline = settings.baseline.get((pset.sweep_id, pset.digest))
    if baseline is None:
        return "new", None
    found = compare.differences(
        baseline,
        row,
        keys=pset.returned,
        ignore=set(pset.params) | hook_keys,
        rtol=settings.rtol if pset.sweep.rtol is None else pset.sweep.rtol,
        atol=settings.atol if pset.sweep.atol is None else pset.sweep.atol,
    )
    if not found:
        return "same", None
    keys = ", ".join(d.key for d in found)
    return "differs", (
        f"results differ from baseline {settings.compare} "
        f"(row {baseline.get('_pset_id')}) in {keys}\n{compare.diff_table(found)}"
    )


def _outcome(call: pytest.CallInfo, report: pytest.TestReport) -> tuple[str, str | None]:
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


# -- the controller: journal, database, summary ----------------------------------------


class Controller:
    """Runs in the one process that owns the calc dir: the only writer of files."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.recorder = Recorder(settings.target, settings.run.run_id)
        self.counts: collections.Counter = collections.Counter()
        self.verdicts: collections.Counter = collections.Counter()
        self.modules: dict[str, None] = {}
        self.before: Any = None  # the database before this session, where needed
        self.writer: WriterProcess | None = None
        self.check_database = False  # wait for the writer to have read the database
        self.written: int | None = None
        self.lookahead: dict[str, collections.Counter] = {}
        self.failure: str | None = None
        self.collect_only = bool(config.option.collectonly)
        self._header_done = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before anything runs: merge interrupted runs, back up, start the writer.

        The database is read here only where an option needs it; the writer process
        reads it meanwhile to check it (``pytest_runtestloop``).
        """
        settings = self.settings
        if self.collect_only:  # look, never write: the look-ahead reads the database
            return
        compare_default = settings.compare == settings.calc_dir / DATABASE
        try:
            deferred: list[str] = []
            target, recovered = prepare_calc_dir(
                settings.calc_dir, settings.simulate, settings.backup, deferred
            )
            self.check_database = (target / DATABASE).exists()
            self.writer = WriterProcess(target, self.recorder.journal_path)
            if settings.skip_dups or settings.simulate or compare_default:
                self.before = engine.read_database(target)
            if settings.compare is not None:
                baseline = (
                    self.before if compare_default else engine.read_database(settings.compare)
                )
                settings.baseline = compare.baseline_index(baseline)
        except PsweepError as exc:
            raise pytest.UsageError(f"psweep: {exc}") from None
        before = self.before
        if settings.skip_dups and before is not None and "_outcome" in before:
            passed = before[before["_outcome"] == "passed"]
            settings.done = set(zip(passed["_sweep"], passed["_pset_hash"]))
        if recovered:
            self._say(
                f"psweep: merged {recovered} rows left by an interrupted session "
                f"into {settings.calc_dir / DATABASE}"
            )
        for problem in deferred:
            self._say(f"psweep: {problem}; tried again at the end of this session")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand what was made here once to an xdist worker, in builtin types."""
        settings = self.settings
        node.workerinput["psweep_run_id"] = settings.run.run_id
        node.workerinput["psweep_done"] = sorted(settings.done)
        node.workerinput["psweep_baseline"] = pickle.dumps(settings.baseline)
        node.workerinput["psweep_provenance"] = settings.provenance

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.collect_only:
            return
        entries = [e for e in map(_sweep_pset, session.items) if e is not None]
        if entries:
            try:
                self.before = engine.read_database(self.settings.calc_dir)
            except PsweepError as exc:
                raise pytest.UsageError(f"psweep: {exc}") from None
            self.lookahead = compare.lookahead(
                self.before, ((e.sweep_id, e.digest, e.sweep.code_hash) for e in entries)
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before the first pset runs: stop if the writer cannot read the database."""
        if self.writer is None or not self.check_database:
            return
        sweeps_here = any(_sweep_of(item) is not None for item in session.items)
        if not sweeps_here and not _xdist_active(self.config):
            return  # no sweep in this session: nothing to wait for
        try:
            self.writer.wait_ready()
        except PsweepError as exc:
            raise pytest.UsageError(f"psweep: {exc}") from None

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> list[str]:
        return self._header(found[0].sweep_id for found in map(_sweep_of, items) if found)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self._header_done:
            self._header_done = True
            sweep_items = (i for i in ids if "::sweep_" in i and i.endswith("]"))
            # the sweep id ends where the pset id begins: the "[" after the name
            sweep_ids = (i[: i.index("[", i.index("::sweep_"))] for i in sweep_items)
            for line in self._header(sweep_ids):
                self._say(line)

    def _header(self, sweep_ids: Any) -> list[str]:
        per_sweep = collections.Counter(sweep_ids)
        if not per_sweep:
            return []
        database = self.settings.target / DATABASE
        lines = [f"psweep: run {self.settings.run.run_id}, database {database}"]
        lines += [f"psweep: {sweep}: {n} psets" for sweep, n in per_sweep.items()]
        return lines

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Journal each row as its report arrives, so a killed session loses none."""
        # taken off the report: pytest keeps every report to the end, and each
        # attribute is walked by its garbage collections at exit
        attributes = report.__dict__
        record = attributes.pop("psweep_row", None)
        if record is None:
            return
        self.recorder.record_encoded(record)
        self.counts[attributes.pop("psweep_outcome")] += 1
        verdict = attributes.pop("psweep_compare", None)
        if verdict is not None:
            self.verdicts[verdict] += 1
        self.modules[report.nodeid.split("::", 1)[0]] = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Merge the journal into the database in one atomic write."""
        if self.writer is None:
            return
        settings = self.settings
        try:
            self.written = self.recorder.finish_in(self.writer)
        except PsweepError as exc:
            self.failure = (
                f"psweep: {exc}; this session's rows stay in "
                f"{self.recorder.journal_dir} for the next run"
            )
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        if not self.recorder.count:
            return
        for module in self.modules:
            self.recorder.keep_source(self.config.rootpath / module, module)
        if settings.simulate or self.config.hook.pytest_psweep_finish.get_hookimpls():
            self._finish_with_frames()

    def _finish_with_frames(self) -> None:
        """The look-ahead of a simulation and the finish hook, from the written database."""
        settings = self.settings
        database = engine.read_database(settings.target)
        new_rows = database[database["_run_id"] == settings.run.run_id]
        if settings.simulate:
            self.lookahead = compare.lookahead(
                self.before,
                zip(new_rows["_sweep"], new_rows["_pset_hash"], new_rows["_code_hash"]),
            )
        self.config.hook.pytest_psweep_finish(
            database=database, new_rows=new_rows, calc_dir=settings.target
        )

    def pytest_unconfigure(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.counts or self.failure or self.lookahead):
            return
        terminalreporter.section("psweep")
        write = terminalreporter.write_line
        for sweep, count in self.lookahead.items():
            parts = ", ".join(f"{count[kind]} {kind}" for kind in compare.LOOKAHEAD)
            write(f"look ahead: {sweep}: {parts}")
        if self.failure:
            write(self.failure, red=True)
        elif self.counts:
            counts = ", ".join(f"{self.counts[outcome]} {outcome}" for outcome in OUTCOMES)
            path = self.settings.target / DATABASE
            write(f"{path}: psets {counts}; {self.written} rows written")
            if self.writer.recovered:
                write(f"merged {self.writer.recovered} rows left by an interrupted session")
            for problem in self.writer.deferred:
                write(f"psweep: {problem}", red=True)
        if self.verdicts:
            write(
                f"compared with {self.settings.compare}: {self.verdicts['same']} same, "
                f"{self.verdicts['differs']} differ, {self.verdicts['new']} new"
            )

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
