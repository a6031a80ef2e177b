"""Repeat a study: each pytest session is one run with its own ``_run_id``.

    $ pytest --psweep sweep_repeat.py --psweep-calc-dir=calc/repeat
    $ pytest --psweep sweep_repeat.py --psweep-calc-dir=calc/repeat
    $ psweep show calc/repeat --cols a sample _run_seq _pset_hash

Afterwards: six rows from two runs (``_run_seq`` 0 and 1). The same psets have the
same ``_pset_hash`` in both runs, so ``df.groupby("_pset_hash")`` collects the
repeated samples of each pset; every row still has its own ``_pset_id``.
"""

import random

import pytest_psweep as ps


@ps.sweep(ps.plist("a", [1, 2, 3]))
def sweep_repeat(pset):
    return {"sample": random.gauss(pset["a"], 0.1)}
