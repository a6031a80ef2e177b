"""The study's folder, whatever path a node mounts it under (ssh workers, SPEC §7).

A compute node may see ``/gpfs/home/u/study`` where the login node sees
``/home/u/study``. So an xdist worker that runs in another folder than the
controller is not judged by its path: the controller writes a token into its calc
dir (``.psweep-study``, made once), and the worker reads it in its own calc dir. The
same token: the same study, and ``pset_dir`` gives the worker's own path of a pset's
folder (``_calc_dir`` in the rows stays the controller's). Another token or none: a
folder that is not the study, refused before any pset runs.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

TOKEN = ".psweep-study"
REFUSED = "psweep_refused"  # the worker's output that says why it did not run

_local: dict[str, str] = {}  # the controller's calc dir -> this worker's path of it


def token(calc_dir: Path) -> str:
    """The study's token in calc_dir, made on first use (by whichever process comes
    first: a link is made whole or not at all)."""
    path = calc_dir / TOKEN
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    temp = calc_dir / f"{TOKEN}.{uuid.uuid4().hex[:12]}.tmp"
    temp.write_text(uuid.uuid4().hex + "\n")
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    return path.read_text().strip()


def check_worker(config: pytest.Config, here: Path, there: Path, workerinput: Any) -> None:
    """In an xdist worker: is ``here`` (its calc dir, by its own working directory)
    the controller's calc dir ``there``? Same path, or the same token: yes. Else the
    worker stops before it collects, and says why in its output to the controller."""
    if here == there:
        return
    expected = workerinput.get("psweep_study")
    try:
        found = (here / TOKEN).read_text().strip()
    except OSError:
        found = None
    if expected is not None and found == expected:
        _local[str(there)] = str(here)
        return
    message = (
        f"psweep: xdist worker {workerinput.get('workerid', '?')} runs in {os.getcwd()}, "
        f"the controller in {workerinput.get('psweep_invocation_dir', '?')}: it found "
        f"{'no study' if found is None else 'another study'} in {here} (no "
        f"{TOKEN} of the controller's {there}), so it would collect other sweeps or "
        "psets. Start it in the study's folder on a shared filesystem, under whatever "
        "path this node mounts it: --tx ssh=HOST//chdir=/path/to/study (--rsyncdir is "
        "not needed)"
    )
    config.workeroutput[REFUSED] = message  # type: ignore[attr-defined]
    config.pluginmanager.register(_Refuse(message), "psweep-refuse")


class _Refuse:
    def __init__(self, message: str) -> None:
        self.message = message

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        pytest.exit(self.message, returncode=pytest.ExitCode.USAGE_ERROR)


def refused(node: Any) -> str | None:
    """In the controller, as a worker goes down: why it refused to run, if it did."""
    output = getattr(node, "workeroutput", None) or {}
    message = output.get(REFUSED)
    return str(message) if message else None


def local(calc_dir: str) -> str:
    """This process's path of a calc dir named in a row (``_calc_dir``)."""
    return _local.get(calc_dir, calc_dir)
