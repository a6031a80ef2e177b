"""Collection under ``--psweep``: ``sweep_*`` functions become one item per pset.

Registered by the entry point (``plugin``) only when ``--psweep`` is given: a
sweep's params are built and checked, chosen (``--psweep-select``,
``--psweep-shard``) and hashed before any item exists, then pytest parametrizes the
function's argument ``pset`` with them. Calc dirs are never collected.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Generator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from . import compare, hints, mounts
from .calcdir import CalcDir
from .errors import PsweepError
from .names import DATABASE, SWEEP_ATTR, RowKey
from .params import check_params, hash_params, pset_ids
from .provenance import code_hash
from .settings import Options, State, options_of, state_of
from .sweeps import Sweep, SweepInfo, item_value


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside a calc dir, a simulate copy or a backup.

    They hold copies of sweep modules (``backup_script/``), which would be collected
    twice and clash with the originals.
    """
    if not collection_path.is_dir():
        return None
    return True if CalcDir(_options(config).calc_dir).holds(collection_path) else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``sweep_*.py`` files that pytest's own ``python_files`` would not."""
    if file_path.suffix != ".py" or not file_path.name.startswith("sweep_"):
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
    if not name.startswith("sweep_"):
        if isinstance(getattr(obj, SWEEP_ATTR, None), Sweep):
            hints.misnamed_sweep(collector, name, obj)
        return None
    sweep = getattr(obj, SWEEP_ATTR, None)
    if not isinstance(sweep, Sweep):
        hints.no_sweep(collector, name, obj)
        return None
    config = collector.config
    state = state_of(config)
    psets = _sweep_psets(collector, _options(config), state, name, obj, sweep)
    if not psets:
        return []  # --psweep-select chose none of them
    state.pending[obj] = psets
    obj.__test__ = True  # type: ignore[attr-defined]  # pytest's own mark of a test function whatever its name
    if not any(mark.name == "psweep" for mark in getattr(obj, "pytestmark", ())):
        # on the function, not on each pset: pytest handles one function mark far
        # faster than the same mark on 10k parameters (benchmarks/README.md)
        pytest.mark.psweep(obj)
    return None


def _options(config: pytest.Config) -> Options:
    options = options_of(config)
    assert options is not None  # this module is a plugin under --psweep only
    return options


def _sweep_psets(
    collector: pytest.Module | pytest.Class,
    options: Options,
    state: State,
    name: str,
    func: Any,
    sweep: Sweep,
) -> list[Any]:
    """The sweep's psets as ``pytest.param``s, or a collection error naming the sweep."""
    sweep_id = f"{collector.nodeid}::{name}"
    where = f"sweep {sweep_id}"
    try:
        params = check_params(sweep.params, where)
        hints.note_parameters(state, sweep_id, params)
        if options.select is not None or options.shard is not None:
            state.unselected[sweep_id] = len(params)
        if options.select is not None:
            params = [pset for pset in params if options.select.matches(pset)]
        digests = hash_params(params, where)
        if options.shard is not None:  # before items exist: a shard pays for its own
            owns = options.shard.owns
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
    state.sweeps[sweep_id] = SweepInfo(
        sweep_id,
        _module_id(collector),
        argnames,
        code_hash(func),
        sweep.rtol,
        sweep.atol,
        _own_calc_dir(collector, options, state, sweep_id, sweep),
        compare.tolerances(getattr(sweep, "compare", None), options.compare_ignore),
    )
    mark = pytest.mark.pset  # looked up once: pytest checks the marker name each time
    try:
        ids = pset_ids(params)
    except PsweepError as exc:
        raise collector.CollectError(f"{where}: {exc}") from None
    # each item gets a dict of its own: its pset and the pset's hash (sweeps.item_value)
    return [
        pytest.param(item_value(pset, digest), id=pset_id, marks=mark(**pset))
        for pset, digest, pset_id in zip(params, digests, ids)
    ]


def _module_id(collector: pytest.Module | pytest.Class) -> str:
    """The node id of the sweep's module: its path relative to the rootdir."""
    module = collector.getparent(pytest.Module)
    assert module is not None
    return module.nodeid


def _own_calc_dir(
    collector: pytest.Collector, options: Options, state: State, sweep_id: str, sweep: Sweep
) -> str | None:
    """A sweep's own calc dir (``ps.sweep(calc_dir=...)``), relative to the rootdir;
    None for the session's. Under --psweep-skip-dups and --psweep-compare, what it
    has done and its baseline come from its own database, read here (in the process
    that collects: under xdist, the controller knows no sweeps)."""
    if sweep.calc_dir is None:
        return None
    config = collector.config
    calc_dir = CalcDir(Path(os.path.normpath(config.rootpath / sweep.calc_dir)))
    if calc_dir.path == options.calc_dir:
        return None
    if calc_dir.path == config.rootpath or calc_dir.path in config.rootpath.parents:
        raise collector.CollectError(
            f"sweep {sweep_id}: calc_dir={sweep.calc_dir!r} is {calc_dir.path}, which holds "
            "the sweep modules (the rootdir or above it); give it a folder of its own"
        )
    own_baseline = options.compare is not None and options.compare == options.calc_dir / DATABASE
    if options.skip_dups or own_baseline:
        try:
            done, baseline = _what_it_has(options, state, calc_dir, own_baseline)
        except PsweepError as exc:
            raise collector.CollectError(f"sweep {sweep_id}: {exc}") from None
        if options.skip_dups:
            state.done = {key for key in state.done if key[0] != sweep_id}
            state.done.update(key for key in done if key[0] == sweep_id)
        if own_baseline:
            for key in [key for key in state.baseline if key[0] == sweep_id]:
                del state.baseline[key]
            state.baseline.update((k, row) for k, row in baseline.items() if k[0] == sweep_id)
    return str(calc_dir.path)


def _what_it_has(
    options: Options, state: State, calc_dir: CalcDir, baseline: bool
) -> tuple[set[RowKey], dict[RowKey, dict[str, Any]]]:
    """A sweep's own calc dir's done keys and (``baseline``) latest passed rows, read
    once per calc dir however many sweeps share it."""
    known = state.own_databases.get(calc_dir.path)
    if known is None:
        from .session import CalcSession

        session = CalcSession(calc_dir.path, options.run_id, shard=options.shard)
        done = session.done() if options.skip_dups else set()
        rows = session.baseline(calc_dir.database) if baseline else {}
        known = state.own_databases[calc_dir.path] = (done, rows)
    return known


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config) -> Generator[None, None, None]:
    """pytest's ``-m`` takes ints, strings, bools and None as a mark's values: a
    ``pset(...)`` with a float is a parse error, which names the way that works."""
    try:
        return (yield)
    except pytest.UsageError as exc:
        markexpr = config.option.markexpr or ""
        found = _PSET_MARK.findall(markexpr)
        if not found or "-m" not in str(exc):
            raise
        hint = 'select psets by any value with --psweep-select, e.g. "tol == 0.001"'
        pairs = [_PAIR.fullmatch(part.strip()) for part in ",".join(found).split(",")]
        simple = _PSET_MARK.sub("", markexpr).replace("and", "").strip() == ""
        if simple and pairs and all(pairs):  # pset(a=1, b=0.5) and pset(c=2): the same
            selection = " and ".join(f"{p.group(1)} == {p.group(2)}" for p in pairs if p)
            hint = f'select psets by any value with --psweep-select "{selection}"'
        raise pytest.UsageError(
            f"{exc}\npsweep: -m 'pset(...)' takes ints, strings, bools and None only; {hint}"
        ) from None


_PSET_MARK = re.compile(r"\bpset\(([^)]*)\)")
_PAIR = re.compile(r"(\w+)\s*=\s*([\w.+-]+)")  # name=value, the value a plain number or name


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    state = state_of(config)
    if state.sweeps:
        hints.check_parameters(_options(config), state, config.option.markexpr or "")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per pset: pytest's own parametrization of the argument ``pset``."""
    # popped: pytest keeps what each item needs (its callspec), so 10k params and
    # mark decorators do not stay alive (and walked by every gc) for the session
    values = state_of(metafunc.config).pending.pop(metafunc.function, None)
    if values is None:
        return
    if "pset" not in metafunc.fixturenames:
        pytest.fail(
            f"sweep {metafunc.definition.nodeid}: a sweep function takes the argument "
            "'pset' (or uses a fixture that does)",
            pytrace=False,
        )
    metafunc.parametrize("pset", values)


@pytest.fixture
def pset_dir(pset: dict[str, Any], request: pytest.FixtureRequest) -> Path:
    """The pset's own folder ``<calc_dir>/<_pset_id>/``, created: like ``tmp_path``, but
    kept, and named in the pset's row (``_pset_id``). Not made by --setup-only."""
    folder = Path(mounts.local(pset["_calc_dir"]), pset["_pset_id"])
    if not _options(request.config).dry_run:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
