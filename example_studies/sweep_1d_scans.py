"""Several 1d scans around one point, extended step by step, with backups.

Scan ``a`` first; later add a scan of ``b`` around the same centre. ``--psweep-backup``
copies the calc dir (database and files) to ``calc/scans_<newest _time_utc>`` before
the new run, and ``--psweep-skip-dups`` runs only psets not already done:

    $ PSWEEP_SCANS=a pytest --psweep sweep_1d_scans.py --psweep-calc-dir=calc/scans
    $ PSWEEP_SCANS=a,b pytest --psweep sweep_1d_scans.py --psweep-calc-dir=calc/scans --psweep-backup --psweep-skip-dups
    $ psweep show calc/scans --cols a b _vary _run_seq

Afterwards: the a-scan from run 0 and the b-scan from run 1 (its centre point was
already done, so it is skipped), the column ``_vary`` naming the scanned parameter,
and a backup of the calc dir as it was before run 1.
"""

import os

import pytest_psweep as ps

CENTRE = {"a": 1.0, "b": 10.0}
SCANS = {"a": ps.plist("a", [0.5, 1.0, 2.0]), "b": ps.plist("b", [5.0, 10.0, 20.0])}


def params():
    chosen = os.environ.get("PSWEEP_SCANS", "a,b").split(",")
    return ps.stargrid(CENTRE, [SCANS[name] for name in chosen], vary_labels=chosen)


@ps.sweep(params)  # a callable: params are built when pytest collects the sweep
def sweep_1d_scans(pset):
    return {"energy": (pset["a"] - 1) ** 2 + 0.01 * (pset["b"] - 10) ** 2}
