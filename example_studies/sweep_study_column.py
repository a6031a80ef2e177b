"""A constant "study" column to name parts of a database for post-processing.

    $ pytest --psweep sweep_study_column.py --psweep-calc-dir=calc/study
    $ psweep show calc/study --query "study == 'scan=a'" --cols study a b result

Two sweeps share one database; each pset carries ``study``, so post-processing
selects rows with ``df[df.study == "scan=a"]`` instead of remembering run ids. The
name even encodes the scanned columns: ``"scan=a".split("=")[1].split(":")``.
"""

import pytest_psweep as ps

study_a = ps.pgrid(ps.plist("a", [1, 2, 3]), ps.plist("b", [10]), ps.plist("study", ["scan=a"]))
study_b = ps.pgrid(ps.plist("a", [1]), ps.plist("b", [10, 20]), ps.plist("study", ["scan=b"]))


def model(pset):
    return {"result": pset["a"] * pset["b"]}


@ps.sweep(study_a)
def sweep_scan_a(pset):
    return model(pset)


@ps.sweep(study_b)
def sweep_scan_b(pset):
    return model(pset)
