"""Save each pset's data in its own folder ``<_calc_dir>/<_pset_id>/`` (the fixture
``pset_dir``; ``ps.run`` users make it from ``pset["_calc_dir"]`` and ``pset["_pset_id"]``).

    $ pytest --psweep sweep_save_data_on_disk.py --psweep-calc-dir=calc/on_disk
    $ python eval_save_data_on_disk.py calc/on_disk

Afterwards: one folder per pset named by its ``_pset_id`` (a UUID that never
changes), each with ``output.txt``; the database says which parameters made which
folder, so no parameter values are encoded in file names. The eval script reads the
files back through the database and writes ``calc/on_disk/results_eval.pk``.
"""

import subprocess
from pathlib import Path

import pytest_psweep as ps


@ps.sweep(ps.plist("a", [1, 2, 3, 4]))
def sweep_save_data_on_disk(pset, pset_dir: Path):
    # stands for an external program that writes its output to disk
    cmd = f"echo {pset['a']} {pset['a'] * 2} {pset['a'] * 4} > {pset_dir / 'output.txt'}"
    subprocess.run(cmd, shell=True, check=True)
    return {"cmd": cmd}
