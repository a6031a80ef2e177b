"""The session's psweep options, resolved once from command line and ini.

Each option's problem is a usage error that names the option and what to give
instead. Under xdist a worker takes what the controller chose (run id, calc dir).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import integrations, mounts, shards
from .calcdir import CalcDir, database_file
from .database import lock_timeout_seconds
from .errors import PsweepError
from .names import CALC_DIR, new_id
from .selection import Selection
from .settings import Options


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A PsweepError (the user asked for something wrong) as pytest's usage error."""
    try:
        yield
    except PsweepError as exc:
        raise pytest.UsageError(f"psweep: {exc}") from None


def resolve(config: pytest.Config) -> Options:
    """The options of a session with ``--psweep``, or a usage error."""
    workerinput = getattr(config, "workerinput", None)
    calc_dir = calc_dir_of(config)
    if calc_dir.path == config.rootpath or calc_dir.path in config.rootpath.parents:
        raise pytest.UsageError(
            f"psweep: calc dir {calc_dir.path} holds the sweep modules (it is the rootdir "
            "or a folder above it), so the copies it keeps of them would be collected as "
            f"sweeps too; give it a folder of its own, e.g. --psweep-calc-dir={CALC_DIR}"
        )
    simulate = bool(option(config, "psweep_simulate"))
    backup = bool(option(config, "psweep_backup"))
    shard, run_id = _shard_and_run_id(config, simulate, backup)
    target = calc_dir.simulate.path if simulate else calc_dir.path
    chosen_run_id = run_id is not None
    if workerinput is not None:  # what the controller chose: one run, one calc dir
        run_id = workerinput["psweep_run_id"]
        here, target = target, Path(workerinput["psweep_calc_dir"])
        mounts.check_worker(config, here, target, workerinput)  # the same study?
    return Options(
        calc_dir=calc_dir.path,
        target=target,
        run_id=run_id or new_id(),
        simulate=simulate,
        backup=backup,
        skip_dups=bool(option(config, "psweep_skip_dups")),
        compare=_compare_path(config, calc_dir),
        rtol=_float_ini(config, "psweep_rtol"),
        atol=_float_ini(config, "psweep_atol"),
        lock_timeout=_lock_timeout(config),
        select=_selection(config),
        shard=shard,
        chosen_run_id=chosen_run_id,
        progress_seconds=_float_ini(config, "psweep_progress_seconds"),
        html=integrations.html_active(config),
        junitxml=integrations.junitxml_active(config),
        report=_report_path(config, shard),
        compare_ignore=tuple(config.getini("psweep_compare_ignore")),
        worker=workerinput is not None,
        dry_run=any(
            getattr(config.option, name, False)
            for name in (
                "collectonly",
                "setupplan",
                "setuponly",
                "showfixtures",
                "show_fixtures_per_test",
            )
        ),
    )


def calc_dir_of(config: pytest.Config) -> CalcDir:
    """The calc dir, relative to the rootdir (``.`` and ``..`` taken out)."""
    return CalcDir(Path(os.path.normpath(config.rootpath / str(option(config, "psweep_calc_dir")))))


def option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini key of the same name."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


def _report_path(config: pytest.Config, shard: shards.Shard | None) -> Path | None:
    """--psweep-report: where the HTML report goes, relative to the folder pytest was
    started in (as --junitxml); None without it."""
    text = str(option(config, "psweep_report") or "").strip()
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
    baseline = str(option(config, "psweep_baseline") or "").strip()
    if baseline:
        return database_file(config.rootpath / baseline)
    return calc_dir.database if option(config, "psweep_compare") else None


def _selection(config: pytest.Config) -> Selection | None:
    text = option(config, "psweep_select")
    if not text or not str(text).strip():
        return None
    with usage_errors():
        return Selection(str(text))


def _lock_timeout(config: pytest.Config) -> float:
    with usage_errors():
        return lock_timeout_seconds(option(config, "psweep_lock_timeout"))


def _float_ini(config: pytest.Config, name: str) -> float:
    value = config.getini(name)
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"psweep: ini key {name} = {value!r} is not a number") from None
