"""psweep 0.16's batch workflow: one filled job script per pset from file templates.

``prep_batch(params)`` runs no computation: for each pset it fills the templates of
``templates/calc/`` and one job script per machine (``templates/machines/<name>/``)
into ``<calc_dir>/<_pset_id>/``, records the pset as a row of the database, and writes
``<calc_dir>/run_<name>.sh``, which submits the newest run's jobs (older runs' lines
are kept, commented out). The jobs read their parameters from the filled templates,
or from the database by ``_pset_id``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calcdir import CalcDir
from .copies import make_simulate_copy
from .errors import PsweepError
from .names import CALC_DIR

if TYPE_CHECKING:
    import pandas as pd

TEMPLATE_MODES = ("jinja", "dollar")


class FileTemplate:
    """A template file: filled with a pset, written under ``targetname``."""

    def __init__(self, filename: str | os.PathLike[str], target_suffix: str = "") -> None:
        self.filename = os.fspath(filename)
        self.basename = os.path.basename(self.filename)
        self.dirname = os.path.dirname(self.filename)
        self.targetname = f"{self.basename}{target_suffix}"

    def __repr__(self) -> str:
        return self.filename

    def fill(self, pset: dict[str, Any], mode: str = "jinja") -> str:
        """The template's text with the pset's values: ``{{name}}`` (jinja2, needs
        the jinja2 package) or ``$name`` (``string.Template``). A placeholder the
        pset has no value for raises (jinja2's UndefinedError, or KeyError), as in
        psweep, with a note naming the template."""
        text = Path(self.filename).read_text()
        try:
            if mode == "dollar":
                return string.Template(text).substitute(pset)
            if mode == "jinja":
                return _jinja(text, pset)
        except Exception as exc:
            exc.add_note(f"psweep: filling template {self.filename} failed")
            raise
        raise PsweepError(
            f"FileTemplate.fill: mode={mode!r} is not one of {', '.join(TEMPLATE_MODES)}"
        )


def _jinja(text: str, pset: dict[str, Any]) -> str:
    try:
        import jinja2
    except ImportError:
        raise PsweepError(
            "template_mode='jinja' needs the jinja2 package: pip install jinja2, or "
            "write $name placeholders and use template_mode='dollar'"
        ) from None
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return environment.from_string(text).render(pset)


class Machine:
    """A machine's folder ``templates/machines/<name>/``: its job script template
    (filled as ``jobscript_<name>``) and ``info.yaml`` (e.g. ``subcmd: sbatch``, the
    command that submits a job), whose keys become attributes."""

    def __init__(self, machine_dir: str | os.PathLike[str], jobscript_name: str = "jobscript"):
        folder = Path(machine_dir)
        self.name = Path(os.path.normpath(folder)).name  # a link's own name, as psweep
        self.template = FileTemplate(folder / jobscript_name, target_suffix=f"_{self.name}")
        self.subcmd = "sh"
        for key, value in read_info(folder / "info.yaml").items():
            if key in ("name", "template"):
                raise PsweepError(f"{folder / 'info.yaml'}: key {key!r} is the machine's own")
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"{self.name}:{self.template}"


def read_info(path: Path) -> dict[str, Any]:
    """A machine's ``info.yaml``: with PyYAML where installed, else its flat
    ``key: value`` lines (all that psweep's machines use)."""
    text = path.read_text()
    try:
        yaml = importlib.import_module("yaml")  # PyYAML, optional (no type information)
    except ImportError:
        info: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            key, colon, value = line.partition(":")
            if not colon:
                raise PsweepError(
                    f"{path}:{number}: {line!r} is no 'key: value' line (install PyYAML "
                    "for nested YAML)"
                ) from None
            info[key.strip()] = value.strip().strip("'\"")
        return info
    loaded = yaml.safe_load(text) or {}
    if not isinstance(loaded, dict):
        raise PsweepError(f"{path}: expected 'key: value' lines, got {type(loaded).__name__}")
    return loaded


def gather_calc_templates(calc_templ_dir: str | os.PathLike[str]) -> list[FileTemplate]:
    """A template for each file in ``calc_templ_dir``."""
    return [FileTemplate(path) for path in sorted(Path(calc_templ_dir).iterdir())]


def gather_machines(machine_templ_dir: str | os.PathLike[str]) -> list[Machine]:
    """A machine for each folder in ``machine_templ_dir``."""
    return [Machine(path) for path in sorted(Path(machine_templ_dir).iterdir()) if path.is_dir()]


def prep_batch(
    params: Sequence[dict[str, Any]],
    *,
    calc_templ_dir: str = "templates/calc",
    machine_templ_dir: str = "templates/machines",
    git: bool = False,
    write_pset: bool = False,
    template_mode: str = "jinja",
    **kwargs: Any,
) -> pd.DataFrame:
    """Write each pset's filled templates to ``<calc_dir>/<_pset_id>/`` and the
    scripts ``<calc_dir>/run_<machine>.sh``; return the database with the new rows.

    ``write_pset``: also pickle the pset to ``<_pset_id>/pset.pk``. ``simulate=True``:
    do it all in ``<calc_dir>.simulate`` (a copy of the database). Other keywords go
    to ``run`` (``calc_dir``, ``skip_dups``, ``backup``, ...); ``git=True`` as there,
    the run scripts committed too.
    """
    from .engine import _git_commit, run

    if template_mode not in TEMPLATE_MODES:
        raise PsweepError(
            f"prep_batch: template_mode={template_mode!r} is not one of {', '.join(TEMPLATE_MODES)}"
        )
    calc_dir = str(kwargs.pop("calc_dir", CALC_DIR))
    if kwargs.pop("simulate", False):  # the templates are filled all the same, elsewhere
        calc_dir = str(make_simulate_copy(CalcDir(Path(calc_dir))).path)
    machines = gather_machines(machine_templ_dir)
    templates = gather_calc_templates(calc_templ_dir) + [m.template for m in machines]
    for template in templates:
        if not Path(template.filename).is_file():
            raise PsweepError(f"prep_batch: template {template.filename} is no file")

    def fill(pset: dict[str, Any]) -> None:
        folder = Path(pset["_calc_dir"]) / pset["_pset_id"]
        folder.mkdir(parents=True, exist_ok=True)
        for template in templates:
            (folder / template.targetname).write_text(template.fill(pset, mode=template_mode))
        if write_pset:
            with open(folder / "pset.pk", "wb") as fh:
                pickle.dump(dict(pset), fh, pickle.HIGHEST_PROTOCOL)

    df = run(fill, params, calc_dir=calc_dir, git=git, **kwargs)
    for machine in machines:
        script = Path(calc_dir) / f"run_{machine.name}.sh"
        script.write_text(run_script(df, machine))
    if git and len(df):
        _git_commit(Path(calc_dir), str(df["_run_id"].iloc[-1]))
    return df


def run_script(df: pd.DataFrame, machine: Machine) -> str:
    """``run_<machine>.sh``: a line per pset that goes to its folder and submits its
    job script; the psets of earlier runs commented out."""
    newest = df["_run_seq"].max()
    blocks = []
    for latest in (False, True):
        rows = df[(df["_run_seq"] == newest) == latest]
        if not len(rows):
            continue
        prefix = "" if latest else "# "
        blocks.append(
            "\n".join(
                f"{prefix}cd $here/{pset_id}; {machine.subcmd} {machine.template.targetname}"
                f"  # run_seq={run_seq} pset_seq={pset_seq}"
                for pset_id, run_seq, pset_seq in zip(
                    rows["_pset_id"], rows["_run_seq"], rows["_pset_seq"]
                )
            )
        )
    body = "\n\n".join(blocks)
    return f"#!/bin/sh\n\nhere=$(readlink -f $(dirname $0))\n\n{body}\n"
